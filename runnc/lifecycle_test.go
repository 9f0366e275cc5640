package runnc

import (
	"errors"
	"strings"
	"testing"
)

func TestTransitionTable(t *testing.T) {
	allStatuses := []Status{Deleted, Creating, Created, Running, Stopped}
	allOps := []Op{OpCreate, OpCreated, OpStart, OpKill, OpExited, OpDelete, OpForceDelete}

	// allowed lists every valid (status, op) pair and its result; every
	// other pair must fail with a *TransitionError.
	type key struct {
		from Status
		op   Op
	}
	allowed := map[key]Status{
		{Deleted, OpCreate}:       Creating,
		{Creating, OpCreated}:     Created,
		{Created, OpStart}:        Running,
		{Created, OpKill}:         Created,
		{Running, OpKill}:         Running,
		{Creating, OpExited}:      Stopped,
		{Created, OpExited}:       Stopped,
		{Running, OpExited}:       Stopped,
		{Created, OpDelete}:       Deleted,
		{Stopped, OpDelete}:       Deleted,
		{Creating, OpForceDelete}: Deleted,
		{Created, OpForceDelete}:  Deleted,
		{Running, OpForceDelete}:  Deleted,
		{Stopped, OpForceDelete}:  Deleted,
	}

	for _, from := range allStatuses {
		for _, op := range allOps {
			got, err := Transition("c1", from, op)
			want, ok := allowed[key{from, op}]
			if ok {
				if err != nil {
					t.Errorf("%q on %q: unexpected error %v", op, from, err)
				}
				if got != want {
					t.Errorf("%q on %q: status %q, want %q", op, from, got, want)
				}
				continue
			}
			var te *TransitionError
			if !errors.As(err, &te) {
				t.Errorf("%q on %q: error %v, want a *TransitionError", op, from, err)
				continue
			}
			if !errors.Is(err, ErrTransition) {
				t.Errorf("%q on %q: error does not match ErrTransition", op, from)
			}
			if te.From != from || te.Op != op || te.ID != "c1" {
				t.Errorf("%q on %q: error fields %+v", op, from, *te)
			}
			if got != from {
				t.Errorf("%q on %q: failed transition changed status to %q", op, from, got)
			}
		}
	}
}

func TestTransitionUnknownOp(t *testing.T) {
	_, err := Transition("c1", Running, Op("pause"))
	if err == nil {
		t.Fatal("pause accepted")
	}
	if errors.Is(err, ErrTransition) {
		t.Errorf("unknown op reported as a transition error: %v", err)
	}
}

// The runc shim of containerd treats a kill error containing "container
// not running" as "process already finished", and a missing container as
// one whose message contains "does not exist".
func TestTransitionErrorMessages(t *testing.T) {
	cases := []struct {
		from Status
		op   Op
		want string
	}{
		{Stopped, OpKill, "container not running"},
		{Creating, OpKill, "container not running"},
		{Deleted, OpKill, "does not exist"},
		{Deleted, OpStart, "does not exist"},
		{Running, OpDelete, "not stopped"},
		{Running, OpStart, "start needs created"},
		{Stopped, OpCreate, "already exists"},
	}
	for _, c := range cases {
		_, err := Transition("c1", c.from, c.op)
		if err == nil {
			t.Errorf("%q on %q accepted", c.op, c.from)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q on %q: message %q lacks %q", c.op, c.from, err, c.want)
		}
	}
}
