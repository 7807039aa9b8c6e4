package certs

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"homelab/internal/lab"
)

// Actions of a PlanItem.
const (
	ActionRotate = "rotate" // issue a new pair, swap, reload, verify
	ActionSkip   = "skip"   // not due (and not forced) or nothing to replace
	ActionRefuse = "refuse" // something is wrong on disk: nothing is done
)

// ErrNoCA is matched when the CA files do not exist yet.
var ErrNoCA = errors.New("no CA: run homelab cert init")

// ErrRefused is matched by the error of applying a plan that refuses a
// leaf: nothing was changed.
var ErrRefused = errors.New("refused")

// PlanItem is what a rotation will do to one leaf, and why.
type PlanItem struct {
	Leaf   string `json:"leaf"`
	Action string `json:"action"`
	// Reason is why, in words: "in rotation window: 20 days left (window
	// opened 2026-10-01)", "forced: 60 days left", "key ... does not match".
	Reason string `json:"reason"`
	// Current certificate (zero when there is none).
	SHA256   string    `json:"sha256,omitempty"`
	NotAfter time.Time `json:"not_after"`
	DaysLeft int       `json:"days_left"`
	// Reload and Verify describe the consumer's reload and the TLS check
	// ("" when none is configured).
	Reload string `json:"reload,omitempty"`
	Verify string `json:"verify,omitempty"`
}

// Plan is a rotation worked out from the files on disk and the lab file,
// before anything changes. It is what --dry-run prints.
type Plan struct {
	Now   time.Time  `json:"now"`
	Force bool       `json:"force"`
	Items []PlanItem `json:"items"`
}

// Rotations returns the items that will rotate.
func (p *Plan) Rotations() []PlanItem { return p.with(ActionRotate) }

// Refusals returns the items refused; a plan with any is not applied.
func (p *Plan) Refusals() []PlanItem { return p.with(ActionRefuse) }

func (p *Plan) with(action string) []PlanItem {
	var out []PlanItem
	for _, it := range p.Items {
		if it.Action == action {
			out = append(out, it)
		}
	}
	return out
}

// refusedError lists a plan's refusals.
func refusedError(items []PlanItem) error {
	var msgs []string
	for _, it := range items {
		msgs = append(msgs, it.Leaf+": "+it.Reason)
	}
	return fmt.Errorf("%w, nothing was changed: %s", ErrRefused, strings.Join(msgs, "; "))
}

// PlanRotate decides, for the named leaves (all when names is empty), which
// to rotate at now: those expired, inside their rotation window, signed by
// a previous CA, whose SANs or bundle are out of date with the lab file,
// or every one with force. A leaf that is not issued yet, or whose key
// does not match its certificate, is refused. An unknown name, or a
// missing or unusable CA (ErrNoCA), is an error.
func PlanRotate(l *lab.Lab, names []string, force bool, now time.Time) (*Plan, error) {
	if len(names) == 0 {
		names = l.Certs.LeafNames()
	}
	for _, n := range names {
		if _, err := l.Certs.Leaf(n); err != nil {
			return nil, err
		}
	}
	rep, err := Status(l, now)
	if err != nil {
		return nil, err
	}
	if err := usableCA(rep.CA, now); err != nil {
		return nil, err
	}
	p := &Plan{Now: now, Force: force}
	for _, n := range names {
		var c Cert
		for _, lc := range rep.Leaves {
			if lc.Name == n {
				c = lc
			}
		}
		p.Items = append(p.Items, planLeaf(l.Certs.Leaves[n], c, force, "", now))
	}
	return p, nil
}

// usableCA returns why the CA cannot sign (nil when it can).
func usableCA(ca Cert, now time.Time) error {
	switch {
	case !ca.Exists:
		return fmt.Errorf("%w (%s does not exist)", ErrNoCA, ca.CertFile)
	case ca.pair == nil:
		return fmt.Errorf("CA %s: %s", ca.CertFile, strings.Join(ca.Issues, "; "))
	case ca.Expired:
		return fmt.Errorf("the CA expired on %s: run homelab cert rotate-ca", day(ca.NotAfter))
	}
	return nil
}

// planLeaf judges one leaf; forcedWhy, when set, is the reason every
// healthy leaf rotates (rotate-ca).
func planLeaf(l *lab.Leaf, c Cert, force bool, forcedWhy string, now time.Time) PlanItem {
	it := PlanItem{Leaf: l.Name, SHA256: c.SHA256, NotAfter: c.NotAfter, DaysLeft: c.DaysLeft,
		Reload: DescribeReload(l), Verify: DescribeVerify(l)}
	var why []string
	switch {
	case !c.Exists:
		it.Action, it.Reason = ActionRefuse, "not issued yet: run homelab cert issue "+l.Name
		if forcedWhy != "" {
			it.Action = ActionSkip
		}
		return it
	case c.pair == nil:
		it.Action, it.Reason = ActionRefuse, strings.Join(c.Issues, "; ")
		if !c.KeyMatch {
			it.Reason += ": refusing to rotate a broken pair (replace it with homelab cert issue " + l.Name + " --force)"
		}
		return it
	case forcedWhy != "":
		why = append(why, forcedWhy)
	case c.Expired:
		why = append(why, fmt.Sprintf("expired %d days ago", -c.DaysLeft))
	case c.InWindow:
		why = append(why, fmt.Sprintf("in rotation window: %d days left (window opened %s)", c.DaysLeft, day(c.WindowStart)))
	}
	if forcedWhy == "" {
		if !c.SignedByCA {
			why = append(why, "signed by a previous CA")
		}
		if !c.SANsMatch {
			why = append(why, "SANs changed in the lab file")
		}
		if !c.BundleMatch {
			why = append(why, "bundle_file out of date")
		}
	}
	switch {
	case len(why) > 0:
		it.Action, it.Reason = ActionRotate, strings.Join(why, ", ")
	case force:
		it.Action, it.Reason = ActionRotate, fmt.Sprintf("forced: %d days left", c.DaysLeft)
	default:
		it.Action, it.Reason = ActionSkip, fmt.Sprintf("not due: %d days left, window opens %s", c.DaysLeft, day(c.WindowStart))
	}
	return it
}

// CAPlan is a CA rotation worked out before anything changes.
type CAPlan struct {
	Now time.Time `json:"now"`
	// Current is the CA being replaced.
	Current Cert `json:"current"`
	// CommonName and Validity describe the new CA.
	CommonName string        `json:"common_name"`
	Validity   time.Duration `json:"validity"`
	// Bundle is the file clients should trust during the transition: the
	// new CA followed by the current one.
	Bundle string `json:"bundle"`
	// Leaves are re-issued by the new CA (rotate), skipped when not issued
	// yet, or refused (then nothing is done at all).
	Leaves []PlanItem `json:"leaves"`
}

// Refusals returns the leaves refused; a plan with any is not applied.
func (p *CAPlan) Refusals() []PlanItem {
	return (&Plan{Items: p.Leaves}).Refusals()
}

// PlanRotateCA plans replacing the CA at now: a new CA from the lab file,
// every issued leaf re-issued by it. The current CA must exist and be
// readable (it may be expired); leaves whose key does not match are
// refused.
func PlanRotateCA(l *lab.Lab, now time.Time) (*CAPlan, error) {
	rep, err := Status(l, now)
	if err != nil {
		return nil, err
	}
	switch {
	case !rep.CA.Exists:
		return nil, fmt.Errorf("%w (%s does not exist)", ErrNoCA, rep.CA.CertFile)
	case rep.CA.pair == nil:
		return nil, fmt.Errorf("CA %s: %s", rep.CA.CertFile, strings.Join(rep.CA.Issues, "; "))
	}
	p := &CAPlan{Now: now, Current: rep.CA, CommonName: l.Certs.CA.CommonName, Validity: l.Certs.CA.Validity, Bundle: l.Certs.CABundle()}
	for _, c := range rep.Leaves {
		p.Leaves = append(p.Leaves, planLeaf(l.Certs.Leaves[c.Name], c, true, "re-issued by the new CA", now))
	}
	return p, nil
}
