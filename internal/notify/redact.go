package notify

import (
	"cmp"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode"
)

// redacted replaces secrets in text.
const redacted = "***"

// urlInText matches URLs embedded in error texts, such as net/http's
// `Post "https://ntfy.sh/topic": dial tcp ...`.
var urlInText = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)

// Redact returns text with the secret parts of rawURL replaced by "***",
// for error texts (shoutrrr's and net/http's embed the URL they failed on)
// before they are logged or returned. It replaces, in this order:
//   - rawURL itself, escaped or not;
//   - every URL in text, down to scheme://host/*** (the host is kept for
//     diagnosis, userinfo, path and query are dropped);
//   - anywhere else, rawURL's userinfo, user name and password, its
//     query values and path segments that look like tokens (see
//     looksLikeToken; query values of keys such as token, key, password
//     or @Authorization always).
//
// Pieces shorter than 3 characters are left alone: replacing them would
// mangle the text and they protect nothing.
func Redact(text, rawURL string) string {
	if text == "" || rawURL == "" {
		return text
	}
	whole := []string{rawURL}
	if u, err := url.PathUnescape(rawURL); err == nil && u != rawURL {
		whole = append(whole, u)
	}
	for _, w := range whole {
		text = strings.ReplaceAll(text, w, redacted)
	}
	text = urlInText.ReplaceAllStringFunc(text, scrubURL)
	for _, p := range secretPieces(rawURL) {
		text = strings.ReplaceAll(text, p, redacted)
	}
	return text
}

// scrubURL reduces a URL found in text to scheme://host, with "/***" when
// anything followed the host.
func scrubURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return redacted
	}
	out := u.Scheme + "://" + u.Host
	if u.User != nil || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		out += "/" + redacted
	}
	return out
}

// secretKeys are query keys whose values are always secret, whatever
// they look like (compared lower case, without a leading _ or @).
var secretKeys = []string{"token", "key", "apikey", "api_key", "password", "pass", "secret", "auth", "authorization", "webhook", "sig", "signature"}

// secretPieces returns the parts of rawURL that may be secret, longest
// first so that a piece containing another is replaced whole.
func secretPieces(rawURL string) []string {
	var pieces []string
	add := func(always bool, ss ...string) {
		for _, s := range ss {
			if len(s) >= 3 && (always || looksLikeToken(s)) {
				pieces = append(pieces, s)
			}
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Still catch what looks like a credential in an unparsable URL.
		for _, f := range strings.FieldsFunc(rawURL, func(r rune) bool { return strings.ContainsRune(":/@?&=#", r) }) {
			add(false, f)
		}
		return sortPieces(pieces)
	}
	if u.User != nil {
		pw, _ := u.User.Password()
		add(true, u.User.String(), u.User.Username(), pw, url.QueryEscape(u.User.Username()), url.QueryEscape(pw))
	}
	add(true, u.Opaque, u.Fragment)
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		add(false, seg)
		if un, err := url.PathUnescape(seg); err == nil {
			add(false, un)
		}
	}
	if q, err := url.ParseQuery(u.RawQuery); err == nil {
		for k, vs := range q {
			key := strings.ToLower(strings.TrimLeft(k, "_@$"))
			always := slices.Contains(secretKeys, key) || strings.HasPrefix(k, "@")
			for _, v := range vs {
				add(always, v, url.QueryEscape(v))
				// "Bearer abc123...": the token alone, too.
				for _, f := range strings.Fields(v) {
					add(always && f != v && !strings.EqualFold(f, "bearer") && !strings.EqualFold(f, "basic"), f)
				}
			}
		}
	} else {
		for _, kv := range strings.Split(u.RawQuery, "&") {
			_, v, _ := strings.Cut(kv, "=")
			add(false, v)
		}
	}
	return sortPieces(pieces)
}

func sortPieces(p []string) []string {
	slices.SortFunc(p, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return slices.Compact(p)
}

// looksLikeToken reports whether s might be a token rather than a word:
// at least 6 characters with a digit or with both upper and lower case
// letters, or at least 20 characters.
func looksLikeToken(s string) bool {
	if len(s) >= 20 {
		return true
	}
	return len(s) >= 6 && (strings.ContainsFunc(s, unicode.IsDigit) ||
		strings.ContainsFunc(s, unicode.IsUpper) && strings.ContainsFunc(s, unicode.IsLower))
}
