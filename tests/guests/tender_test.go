package guests

import (
	"os"
	"testing"
)

// Environment variables naming the tenders TestCasesUnderTender runs the
// table with: any program with the Solo5 tender command line, such as
// solo5-hvt and solo5-spt, or ntender under those names.
// GUESTS_EXPECT=upstream checks the upstream Solo5 outcome where the
// table records one.
const (
	hvtTenderEnv = "GUESTS_TENDER_HVT"
	sptTenderEnv = "GUESTS_TENDER_SPT"
	expectEnv    = "GUESTS_EXPECT"
)

// TestCasesUnderTender runs every case of the table under the tenders
// named by GUESTS_TENDER_HVT and GUESTS_TENDER_SPT. It checks the table
// against a reference tender (the upstream Solo5 ones), or any other
// tender against the table.
func TestCasesUnderTender(t *testing.T) {
	tenders := map[string]string{
		TargetHVT: os.Getenv(hvtTenderEnv),
		TargetSPT: os.Getenv(sptTenderEnv),
	}
	if tenders[TargetHVT] == "" && tenders[TargetSPT] == "" {
		t.Skipf("set %s or %s to a Solo5-compatible tender to run the table",
			hvtTenderEnv, sptTenderEnv)
	}
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	upstream := false
	switch expect := os.Getenv(expectEnv); expect {
	case "":
	case "upstream":
		upstream = true
	default:
		t.Fatalf("invalid %s=%q, expected upstream or nothing", expectEnv, expect)
	}

	for _, c := range cases {
		if upstream {
			c = c.WithUpstreamExpectation()
		}
		t.Run(c.ID(), func(t *testing.T) {
			tender := tenders[c.Target]
			if tender == "" {
				t.Skipf("no %s tender given", c.Target)
			}
			Run(t, c, tender)
		})
	}
}
