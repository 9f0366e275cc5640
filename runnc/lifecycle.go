package runnc

import (
	"errors"
	"fmt"
)

// Status is a container's lifecycle state as the OCI runtime specification
// names it in the state JSON. Paused is not supported: a unikernel tender
// cannot be frozen and thawed through runnc.
type Status string

// Lifecycle states. Creating lasts from the start of create until the
// container process waits for start. A container left in Creating means
// that create failed part way, and only delete --force removes it.
const (
	Creating Status = "creating"
	Created  Status = "created"
	Running  Status = "running"
	Stopped  Status = "stopped"
)

// Op is a lifecycle operation that may change a container's status.
type Op string

// Lifecycle operations. Exited is not a command: it is the container
// process ending on its own or by a signal.
const (
	OpCreate      Op = "create"
	OpCreated     Op = "created"
	OpStart       Op = "start"
	OpKill        Op = "kill"
	OpExited      Op = "exited"
	OpDelete      Op = "delete"
	OpForceDelete Op = "delete --force"
)

// Deleted is the status Transition returns after a delete: the container no
// longer exists.
const Deleted Status = ""

// ErrTransition is the kind every *TransitionError unwraps to.
var ErrTransition = errors.New("invalid lifecycle transition")

// TransitionError is an operation that the container's current status does
// not allow.
type TransitionError struct {
	ID   string
	Op   Op
	From Status
}

// Error returns the message. The kill message contains "container not
// running", the phrase containerd's runc shim matches to treat a kill of
// an exited container as "process already finished".
func (e *TransitionError) Error() string {
	switch {
	case e.From == Deleted:
		return fmt.Sprintf("cannot %s container %s: container does not exist", e.Op, e.ID)
	case e.Op == OpKill && (e.From == Stopped || e.From == Creating):
		return fmt.Sprintf("cannot kill container %s: container not running (status %s)", e.ID, e.From)
	case e.Op == OpStart:
		return fmt.Sprintf("cannot start container %s: status is %s, start needs created", e.ID, e.From)
	case e.Op == OpDelete:
		return fmt.Sprintf("cannot delete container %s that is not stopped: status is %s; stop it or use delete --force", e.ID, e.From)
	case e.Op == OpCreate:
		return fmt.Sprintf("cannot create container %s: it already exists with status %s", e.ID, e.From)
	}
	return fmt.Sprintf("cannot %s container %s: status is %s", e.Op, e.ID, e.From)
}

// Unwrap returns ErrTransition.
func (e *TransitionError) Unwrap() error { return ErrTransition }

// Transition returns the status after op on a container with status from.
// A container that does not exist has status Deleted, and a deleted
// container comes back as Deleted. A kill leaves the status unchanged: the
// container becomes Stopped through OpExited when its process ends.
func Transition(id string, from Status, op Op) (Status, error) {
	switch op {
	case OpCreate:
		if from == Deleted {
			return Creating, nil
		}
	case OpCreated:
		if from == Creating {
			return Created, nil
		}
	case OpStart:
		if from == Created {
			return Running, nil
		}
	case OpKill:
		if from == Created || from == Running {
			return from, nil
		}
	case OpExited:
		if from == Creating || from == Created || from == Running {
			return Stopped, nil
		}
	case OpDelete:
		// runc's delete also kills and removes a created container. Its
		// process has not run the unikernel yet, so nothing is lost.
		if from == Created || from == Stopped {
			return Deleted, nil
		}
	case OpForceDelete:
		if from != Deleted {
			return Deleted, nil
		}
	default:
		return from, fmt.Errorf("unknown lifecycle operation %q", op)
	}
	return from, &TransitionError{ID: id, Op: op, From: from}
}
