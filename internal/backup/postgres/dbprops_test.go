package postgres

import (
	"reflect"
	"testing"
)

func TestSplitGUCList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{``, nil},
		{`  `, nil},
		{`public`, []string{"public"}},
		{`"$user", public`, []string{"$user", "public"}},
		{` a ,b,  "c d" `, []string{"a", "b", "c d"}},
		{`"with ""quote""", x`, []string{`with "quote"`, "x"}},
		{`"a,b",c`, []string{"a,b", "c"}},
	} {
		if got := splitGUCList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitGUCList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSettingValue(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"work_mem", "8MB", `'8MB'`},
		{"app.tenant", "it's", `'it''s'`},
		{"search_path", `"$user", app`, `'$user', 'app'`},
		{"Search_Path", `""`, `''`},
		{"temp_tablespaces", ``, `''`},
	} {
		if got := settingValue(tc.name, tc.value); got != tc.want {
			t.Errorf("settingValue(%q, %q) = %s, want %s", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestDBPropsStatements(t *testing.T) {
	comment := "the shop's"
	p := dbProps{
		explicitACL: true,
		grants:      []dbGrant{{"", "TEMPORARY", false}, {"app ro", "CONNECT", true}},
		comment:     &comment,
		settings:    []dbSetting{{"", []string{"work_mem=8MB"}}, {"app ro", []string{"statement_timeout=5s"}}},
	}
	want := []string{
		`REVOKE ALL ON DATABASE "s" FROM PUBLIC`,
		`REVOKE ALL ON DATABASE "s" FROM "o"`,
		`GRANT TEMPORARY ON DATABASE "s" TO PUBLIC`,
		`GRANT CONNECT ON DATABASE "s" TO "app ro" WITH GRANT OPTION`,
		`COMMENT ON DATABASE "s" IS 'the shop''s'`,
		`ALTER DATABASE "s" SET "work_mem" TO '8MB'`,
		`ALTER ROLE "app ro" IN DATABASE "s" SET "statement_timeout" TO '5s'`,
	}
	if got := p.statements("s", "o"); !reflect.DeepEqual(got, want) {
		t.Errorf("statements:\n%q\nwant\n%q", got, want)
	}
	if got := (dbProps{}).statements("s", "o"); len(got) != 0 {
		t.Errorf("default properties give %q, want nothing", got)
	}
}
