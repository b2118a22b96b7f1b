package crashtest

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what a run did and every violation it found.
type Report struct {
	Seed         uint64
	Accounts     int
	Writers      int
	Kills        int
	Round        time.Duration
	Live         int
	Store        string
	StoreRemoved bool
	Elapsed      time.Duration
	Rounds       []*Round
	Fanout       *Fanout
	// Violations are the broken guarantees, each a sentence.
	Violations []string
	// Incomplete is why the run stopped early, if it did.
	Incomplete string

	lastRestart time.Duration // of the latest start
	phase1Total int64         // recipients of phase 1's pushes
}

// Print writes the summary.
func (rep *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "timd crash test: seed %d, %d accounts, %d writers, %d kills, rounds up to %v, %d live clients\n",
		rep.Seed, rep.Accounts, rep.Writers, rep.Kills, rep.Round, rep.Live)
	if len(rep.Rounds) > 0 {
		fmt.Fprintln(w, "\nphase 1: writes at full speed, kill -9, restart, read back, audience index vs store")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "round\twrote for\tacked req\tacked writes\tin-flight req\tin-flight writes\tambiguous\tapplied\taccounts\tconditions\trestart\t")
		for _, rd := range rep.Rounds {
			restart := "-"
			if rd.Name != "final" {
				restart = rd.Restart.Round(time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t\n", rd.Name, rd.KilledAfter.Round(time.Millisecond),
				rd.AckedRequests, rd.AckedWrites, rd.OpenRequests, rd.OpenWrites, rd.Ambiguous, rd.OpenApplied,
				rd.Accounts, rd.Conditions, restart)
		}
		tw.Flush()
		fmt.Fprintln(w, "  (ambiguous: accounts an unanswered write left with two legal states; applied: of those, found with it applied;")
		fmt.Fprintln(w, "   final: writers stopped instead of the server, so the index checked is the one maintained live)")
	}
	if f := rep.Fanout; f != nil && f.TaskID != "" {
		fmt.Fprintln(w, "\nphase 2: kill -9 during a push fan-out")
		fmt.Fprintf(w, "  push %s to %d accounts, fanout_per_second %d, %d live clients (%d acknowledging)\n",
			f.TaskID, f.Population, f.Rate, f.Live, f.Acking)
		fmt.Fprintf(w, "  killed at SentCount %d/%d; restart %v; fan-out finished %v after the restart\n",
			f.KilledAt, f.Population, f.Restart.Round(time.Millisecond), f.Finished.Round(time.Millisecond))
		fmt.Fprintf(w, "  statistics after the restart: TotalCount %d SentCount %d\n", f.Total, f.Sent)
		fmt.Fprintf(w, "  live clients: %d/%d received the push (%d again on the new connection); %d raw frames, %d clients got repeats\n",
			f.Received, f.Live, f.Again, f.Frames, f.Repeated)
		fmt.Fprintf(w, "  inboxes read: %d (every live client's and a sample)\n", f.Inboxes)
		fmt.Fprintf(w, "  MsgRandom %d after the restart answers the same TaskId: %t\n", f.MsgRandom, f.SameTask)
	}
	store := rep.Store
	if rep.StoreRemoved {
		store += " (removed)"
	}
	fmt.Fprintf(w, "\nstore %s; %v in all\n", store, rep.Elapsed.Round(time.Second/10))
	if rep.Incomplete != "" {
		first, _, _ := strings.Cut(rep.Incomplete, "\n")
		fmt.Fprintf(w, "INCOMPLETE: the run stopped early: %s\n", first)
	}
	if len(rep.Violations) == 0 && rep.Incomplete == "" {
		fmt.Fprintln(w, "PASS: every acknowledged write survived, the index equalled the store, every recipient got the push once")
		return
	}
	if len(rep.Violations) == 0 {
		return
	}
	fmt.Fprintf(w, "FAIL: %d violations (rerun with --seed %d):\n", len(rep.Violations), rep.Seed)
	for _, v := range rep.Violations {
		fmt.Fprintln(w, "  -", v)
	}
}
