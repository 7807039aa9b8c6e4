package lab

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder fills Go values from a yaml.Node tree, checking field names and
// scalar types against the yaml tags of the target structs. It keeps going
// after a problem, so that a whole file is checked at once, and remembers
// where every field path was found so that later checks can point at it.
type decoder struct {
	errs []FieldError
	file string
	root *yaml.Node
	keys map[string]*yaml.Node // path -> the mapping key naming it
	vals map[string]*yaml.Node // path -> its value
	bad  map[string]bool       // paths whose value could not be decoded

	merging map[*yaml.Node]bool // the mappings whose pairs are being gathered
	steps   int                 // nodes visited, aliases and merges expanded
	tooMuch bool                // steps went over maxSteps: decoding stopped
}

// maxSteps bounds the nodes the decoder visits. Aliases and merge keys
// can expand a small file exponentially (a merge of ten aliases of a
// mapping that merges ten aliases...); a lab file without them, even at
// MaxFileSize, visits fewer than a million.
const maxSteps = 1 << 20

func newDecoder(file string, root *yaml.Node) *decoder {
	return &decoder{
		file: file,
		root: root,
		keys: map[string]*yaml.Node{},
		vals: map[string]*yaml.Node{},
		bad:  map[string]bool{},

		merging: map[*yaml.Node]bool{},
	}
}

// step counts one node visited at path and reports whether decoding may
// go on; the first step over maxSteps records why it stops.
func (d *decoder) step(n *yaml.Node, path string) bool {
	return d.stepN(n, path, 1)
}

// stepN is step for k nodes at once.
func (d *decoder) stepN(n *yaml.Node, path string, k int) bool {
	d.steps += k
	if d.steps <= maxSteps {
		return true
	}
	if !d.tooMuch {
		d.tooMuch = true
		d.errorf(n, path, "aliases and merge keys expand to more than %d nodes: use fewer of them", maxSteps)
	}
	return false
}

// errorf records a problem at node n (the root when nil).
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	if n == nil {
		n = d.root
	}
	d.errs = append(d.errs, FieldError{
		File: d.file, Line: n.Line, Column: n.Column, Field: path,
		Msg: fmt.Sprintf(format, args...),
	})
}

// fail records a problem with the value at path, which is then treated
// as absent by the later checks.
func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.errorf(n, path, format, args...)
}

// at records a problem about path, which may be missing from the file: it
// points at the value when it is a non-null scalar, else at the key naming it, else
// at the nearest enclosing key. Nothing is recorded when the value at path
// was already reported as malformed.
func (d *decoder) at(path, format string, args ...any) {
	if d.bad[path] {
		return
	}
	d.errorf(d.node(path), path, format, args...)
}

func (d *decoder) node(path string) *yaml.Node {
	for p := path; p != ""; p = parent(p) {
		if n := d.vals[p]; n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			return n
		}
		if n := d.keys[p]; n != nil {
			return n
		}
		if n := d.vals[p]; n != nil {
			return n
		}
	}
	return d.root
}

// parent strips the last ".key" or "[i]" from path.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	freeFormType = reflect.TypeFor[map[string]any]()
)

// decode fills v, which must be settable, from n.
func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	n = resolve(n)
	if !d.step(n, path) {
		return
	}
	d.vals[path] = n
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		v.Set(reflect.Zero(v.Type()))
		return
	}
	switch {
	case v.Type() == durationType:
		d.duration(path, n, v)
	case v.Type() == freeFormType:
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		m := map[string]any{}
		if err := n.Decode(&m); err != nil {
			d.fail(n, path, "%s", yamlMessage(err))
			return
		}
		v.Set(reflect.ValueOf(m))
		for i := 0; i+1 < len(n.Content); i += 2 { // only so later checks can point at keys
			d.keys[join(path, n.Content[i].Value)] = n.Content[i]
		}
	case v.Kind() == reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(path, n, p.Elem())
		v.Set(p)
	case v.Kind() == reflect.Struct:
		d.decodeStruct(path, n, v)
	case v.Kind() == reflect.Map:
		d.decodeMap(path, n, v)
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(fmt.Sprintf("%s[%d]", path, i), item, s.Index(i))
		}
		v.Set(s)
	case v.Kind() == reflect.String:
		if n.Kind != yaml.ScalarNode {
			hint := ""
			if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
				hint = ` (quote strings that contain ": ")`
			}
			d.fail(n, path, "expected a string, got %s%s", describe(n), hint)
			return
		}
		v.SetString(n.Value)
	case v.CanInt():
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.fail(n, path, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	default:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n, path, "%s", yamlMessage(err))
		}
	}
}

// duration decodes a Go duration string such as "90s", "15m" or "1h30m".
func (d *decoder) duration(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.fail(n, path, "expected a duration such as 90s, 15m or 1h30m, got %s", describe(n))
		return
	}
	dur, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n, path, "bad duration %q: expected a duration such as 90s, 15m or 1h30m", n.Value)
		return
	}
	v.SetInt(int64(dur))
}

func (d *decoder) decodeStruct(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	v.Set(reflect.Zero(v.Type())) // a later merge or key replaces, never blends
	fields := map[string][]int{}
	var names []string
	yamlFields(v.Type(), nil, fields, &names)
	for _, kv := range d.pairs(path, n) {
		k, val := kv[0], kv[1]
		p := join(path, k.Value)
		i, ok := fields[k.Value]
		if !ok {
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := suggest(k.Value, names); s != "" {
				msg += fmt.Sprintf("; did you mean %s?", s)
			}
			d.errorf(k, p, "%s", msg)
			continue
		}
		d.keys[p] = k
		d.decode(p, val, v.FieldByIndex(i))
	}
}

// yamlFields maps the yaml names of struct type t's fields to their
// index paths, descending into fields tagged ",inline".
func yamlFields(t reflect.Type, prefix []int, fields map[string][]int, names *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		idx := append(slices.Clone(prefix), i)
		switch {
		case opts == "inline" && f.Type.Kind() == reflect.Struct:
			yamlFields(f.Type, idx, fields, names)
		case name != "" && name != "-":
			fields[name] = idx
			*names = append(*names, name)
		}
	}
}

func (d *decoder) decodeMap(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, kv := range d.pairs(path, n) {
		k, val := kv[0], kv[1]
		p := join(path, k.Value)
		d.keys[p] = k
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(p, val, e)
		m.SetMapIndex(reflect.ValueOf(k.Value), e)
	}
	v.Set(m)
}

// pairs returns the key/value pairs of mapping n, those brought in by
// merge keys ("<<: *defaults") first so that explicit keys win. It
// reports keys that are not scalars, keys given twice and merges of a
// mapping into itself.
func (d *decoder) pairs(path string, n *yaml.Node) [][2]*yaml.Node {
	d.merging[n] = true
	defer delete(d.merging, n)
	var merged, explicit [][2]*yaml.Node
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if !d.step(k, path) {
			break
		}
		switch {
		case k.Kind != yaml.ScalarNode:
			d.errorf(k, path, "expected a string key, got %s", describe(k))
		case k.ShortTag() == "!!merge":
			m := d.merge(path, val)
			if !d.stepN(k, path, len(m)) { // each level copies them
				return nil
			}
			merged = append(merged, m...)
		case seen[k.Value] != nil:
			d.errorf(k, join(path, k.Value), "duplicate key (first defined on line %d)", seen[k.Value].Line)
		default:
			seen[k.Value] = k
			explicit = append(explicit, [2]*yaml.Node{k, val})
		}
	}
	return append(merged, explicit...)
}

// merge returns the pairs brought in by a merge key's value: one mapping
// or a list of mappings, earlier ones winning.
func (d *decoder) merge(path string, val *yaml.Node) [][2]*yaml.Node {
	m := resolve(val)
	switch m.Kind {
	case yaml.MappingNode:
		return d.mergeMapping(path, val)
	case yaml.SequenceNode:
		var out [][2]*yaml.Node
		for i := len(m.Content) - 1; i >= 0; i-- {
			if item := resolve(m.Content[i]); item.Kind != yaml.MappingNode {
				d.errorf(item, path, "merge: expected a mapping, got %s", describe(item))
				continue
			}
			out = append(out, d.mergeMapping(path, m.Content[i])...)
		}
		return out
	}
	d.errorf(m, path, "merge: expected a mapping, got %s", describe(m))
	return nil
}

// mergeMapping returns the pairs of the mapping ref is or refers to,
// unless that mapping is one whose pairs are being gathered: a mapping
// that merges itself, directly or through others, has no end.
func (d *decoder) mergeMapping(path string, ref *yaml.Node) [][2]*yaml.Node {
	m := resolve(ref)
	if d.merging[m] { // ref is an alias: a mapping written out is new
		d.errorf(ref, path, "merge: anchor %q includes the mapping that merges it (a cycle)", m.Anchor)
		return nil
	}
	return d.pairs(path, m)
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names a node's kind and value for messages: `string "x"`,
// "integer 5", "a list".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!str":
		return fmt.Sprintf("string %q", n.Value)
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	case "!!null":
		return "null"
	}
	return fmt.Sprintf("%s %q", n.ShortTag(), n.Value)
}

// yamlMessage strips yaml.v3's "yaml: " prefix.
func yamlMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// suggest returns the known name closest to name when it is close enough
// to be a likely typo or a shortening (sha for sha256), or "".
func suggest(name string, known []string) string {
	for _, k := range known {
		if len(name) >= 3 && (strings.HasPrefix(k, name) || strings.HasPrefix(name, k)) {
			return k
		}
	}
	best, bestDist := "", len(name)/3+1
	if bestDist > 3 {
		bestDist = 3
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	for _, k := range sorted {
		if max(len(name)-len(k), len(k)-len(name)) > bestDist {
			continue // too far apart, and levenshtein costs len(name)*len(k)
		}
		if dist := levenshtein(name, k); dist <= bestDist && (best == "" || dist < levenshtein(name, best)) {
			best = k
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
