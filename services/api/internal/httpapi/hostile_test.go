package httpapi

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sensorhub/sensorhub/services/api/internal/cursor"
)

// The hostile-input corpus, testdata/hostile/requests.txt, is replayed
// against the real API on the reference dataset, once per caller of
// hostileCallers: every answer must be the status the corpus expects, never
// a 5xx, a problem document (or the original endpoint's {"message"}) when it
// is a 4xx, valid against the OpenAPI document, and free of any data outside
// the caller's scope. The file's header describes its format.

const hostileCorpus = "testdata/hostile/requests.txt"

// expectation is what a case's answer must be.
type expectation struct {
	status int // exact status, or 0 when only the class is given
	class  int // 4 for "4xx"
	// plain marks net/http's own plain-text answer, sent before any handler
	// runs; the OpenAPI document does not describe those.
	plain bool
	// empty asks a 2xx JSON body whose top-level arrays are all empty.
	empty bool
	// location must be among the problem's errors[].location ("query.limit").
	location string
}

func (e expectation) String() string {
	s := strconv.Itoa(e.status)
	if e.status == 0 {
		s = strconv.Itoa(e.class) + "xx"
	}
	for _, w := range []struct {
		on   bool
		word string
	}{{e.plain, "plain"}, {e.empty, "empty"}, {e.location != "", e.location}} {
		if w.on {
			s += " " + w.word
		}
	}
	return s
}

// headerSpec is one header, or count headers whose name has "#" replaced
// by their index.
type headerSpec struct {
	name, value string
	count       int
}

// hostileCase is one request of the corpus, before its macros are expanded.
type hostileCase struct {
	line    int
	method  string
	target  string
	headers []headerSpec
	expect  expectation
	// override replaces expect for a caller ("foo") or a value class ("long").
	override map[string]expectation
	comment  string
	// class is the class of the value substituted for {v} ("" for a plain case).
	class string
}

// corpusValue is a value of the cross product, substituted for {v}.
type corpusValue struct {
	line  int
	class string
	text  string
	raw   bool // inserted as is, not query-escaped
}

// corpus is the parsed file: its plain cases, and the templates ("each")
// expanded with every value.
type corpus struct {
	cases []hostileCase
	// classDefault is the expectation of a value class in a template that
	// does not name it; "{param}" in its location is the parameter holding {v}.
	classDefault map[string]expectation
}

var (
	statusRe   = regexp.MustCompile(`^([1-5][0-9][0-9]|[1-5]xx)$`)
	locationRe = regexp.MustCompile(`^(query|header)\.\S+$|^\{param\}$`)
)

func parseExpectation(s string) (expectation, error) {
	var e expectation
	words := strings.Fields(s)
	if len(words) == 0 || !statusRe.MatchString(words[0]) {
		return e, fmt.Errorf("expectation %q does not start with a status (404) or class (4xx)", s)
	}
	if strings.HasSuffix(words[0], "xx") {
		e.class = int(words[0][0] - '0')
	} else {
		e.status, _ = strconv.Atoi(words[0])
	}
	for _, w := range words[1:] {
		switch {
		case w == "plain":
			e.plain = true
		case w == "empty":
			e.empty = true
		case locationRe.MatchString(w):
			e.location = w
		default:
			return e, fmt.Errorf("expectation %q: unknown word %q", s, w)
		}
	}
	return e, nil
}

// parseRequest parses `METHOD TARGET [Name: value]... => EXPECT [; key: EXPECT]...`.
func parseRequest(line int, s string) (hostileCase, error) {
	c := hostileCase{line: line}
	if i := strings.Index(s, " # "); i >= 0 {
		s, c.comment = s[:i], strings.TrimSpace(s[i+3:])
	}
	req, exp, ok := strings.Cut(s, " => ")
	if !ok {
		return c, fmt.Errorf("no ` => ` between request and expectation")
	}
	req = strings.TrimSpace(req)
	c.method, req, _ = strings.Cut(req, " ")
	req = strings.TrimSpace(req)
	// The target ends at the first space outside a macro's braces.
	end, depth := len(req), 0
	for i := 0; i < len(req) && end == len(req); i++ {
		switch req[i] {
		case '{':
			depth++
		case '}':
			depth--
		case ' ':
			if depth == 0 {
				end = i
			}
		}
	}
	c.target = req[:end]
	rest := req[end:]
	if c.method == "" || c.target == "" {
		return c, fmt.Errorf("request %q lacks a method or target", req)
	}
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		if rest[0] != '[' {
			return c, fmt.Errorf("after the target, headers are written [Name: value]; got %q", rest)
		}
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return c, fmt.Errorf("unclosed header %q", rest)
		}
		spec := rest[1:end]
		rest = rest[end+1:]
		var h headerSpec
		if strings.HasPrefix(spec, "*") {
			n, after, _ := strings.Cut(spec[1:], " ")
			count, err := strconv.Atoi(n)
			if err != nil || count < 1 {
				return c, fmt.Errorf("header %q: *N needs a positive count", spec)
			}
			h.count, spec = count, after
		}
		name, value, ok := strings.Cut(spec, ":")
		if !ok {
			return c, fmt.Errorf("header %q lacks a colon", spec)
		}
		h.name, h.value = strings.TrimSpace(name), strings.TrimPrefix(value, " ")
		c.headers = append(c.headers, h)
	}
	parts := strings.Split(exp, " ; ")
	var err error
	if c.expect, err = parseExpectation(parts[0]); err != nil {
		return c, err
	}
	for _, p := range parts[1:] {
		key, e, ok := strings.Cut(p, ":")
		if !ok {
			return c, fmt.Errorf("override %q is not `key: expectation`", p)
		}
		if c.override == nil {
			c.override = map[string]expectation{}
		}
		if c.override[strings.TrimSpace(key)], err = parseExpectation(e); err != nil {
			return c, err
		}
	}
	return c, nil
}

// loadCorpus parses the corpus and expands its templates.
func loadCorpus(t *testing.T) *corpus {
	t.Helper()
	f, err := os.Open(hostileCorpus)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := &corpus{classDefault: map[string]expectation{}}
	var (
		values    []corpusValue
		templates []hostileCase
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		var err error
		switch kind {
		case "value", "raw":
			v := corpusValue{line: n, raw: kind == "raw"}
			v.class, rest, _ = strings.Cut(rest, " ")
			rest = strings.TrimSpace(rest)
			if v.raw {
				v.text, _, _ = strings.Cut(rest, " ")
			} else {
				var q string
				if q, err = strconv.QuotedPrefix(rest); err == nil {
					v.text, err = strconv.Unquote(q)
				}
			}
			v.text = expandRepeat(v.text)
			if err == nil && v.text == "" {
				err = fmt.Errorf("empty value")
			}
			values = append(values, v)
		case "class":
			name, e, ok := strings.Cut(rest, " => ")
			if !ok {
				err = fmt.Errorf("class lines are `class NAME => EXPECT`")
				break
			}
			c.classDefault[strings.TrimSpace(name)], err = parseExpectation(e)
		case "each":
			var tc hostileCase
			if tc, err = parseRequest(n, rest); err == nil && !strings.Contains(tc.target, "{v}") {
				err = fmt.Errorf("an each template needs {v} in its target")
			}
			templates = append(templates, tc)
		default:
			var tc hostileCase
			tc, err = parseRequest(n, line)
			c.cases = append(c.cases, tc)
		}
		if err != nil {
			t.Fatalf("%s:%d: %v", hostileCorpus, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if _, ok := c.classDefault[v.class]; !ok && v.class != "text" {
			t.Fatalf("%s:%d: value class %q has no class line", hostileCorpus, v.line, v.class)
		}
	}
	for _, tc := range append(slices.Clone(c.cases), templates...) {
		for key := range tc.override {
			if _, class := c.classDefault[key]; !class && !slices.Contains(hostileCallerKeys, key) {
				t.Fatalf("%s:%d: override for %q, which is neither a caller (%v) nor a value class", hostileCorpus, tc.line, key, hostileCallerKeys)
			}
		}
	}
	for _, tc := range templates {
		param := templateParam(tc.target)
		for _, v := range values {
			x := tc
			x.class = v.class
			enc := v.text
			if !v.raw {
				enc = url.QueryEscape(v.text)
			}
			x.target = strings.ReplaceAll(tc.target, "{v}", enc)
			x.comment = strings.TrimPrefix(fmt.Sprintf("%s; value of line %d (%s) %q", tc.comment, v.line, v.class, v.text), "; ")
			if o, ok := tc.override[v.class]; ok {
				x.expect = o
			} else if v.class != "text" {
				x.expect = c.classDefault[v.class]
			}
			if x.expect.location == "{param}" {
				x.expect.location = "query." + param
			}
			c.cases = append(c.cases, x)
		}
	}
	return c
}

// templateParam is the first query parameter of target whose value holds {v}.
func templateParam(target string) string {
	_, query, _ := strings.Cut(target, "?")
	for _, pair := range strings.Split(query, "&") {
		if name, value, _ := strings.Cut(pair, "="); strings.Contains(value, "{v}") {
			return name
		}
	}
	return ""
}

// hostileCallerKeys name the callers of testHostileCorpus in the corpus.
var hostileCallerKeys = []string{"admin", "foo", "tenantA", "tenantB"}

// hostileCaller runs the corpus with its credential; series is a series in
// its scope, other another one, which {series}, {device}, {parameter} and
// the cursors refer to.
type hostileCaller struct {
	key           string // the corpus's name for it in overrides
	tenant        tenant
	series, other [2]string
	// macros are the caller's values of {series}, {cursor}, ...
	macros map[string]string
	// seriesID is the database id of series, read from its cursor.
	seriesID int32
	// outside are device ids and parameter names of no series in scope.
	outside []string
	// devices are the devices with a series in scope.
	devices map[string]bool
}

func TestHostileCorpusFormat(t *testing.T) {
	c := loadCorpus(t)
	if len(c.cases) < 500 {
		t.Errorf("the corpus expands to %d cases; it should cover every parameter of every endpoint", len(c.cases))
	}
	for _, tc := range c.cases {
		if tc.expect.status >= 500 || tc.expect.class == 5 {
			t.Errorf("%s:%d expects a 5xx; no input may cause one", hostileCorpus, tc.line)
		}
	}
}

// testHostileCorpus replays the corpus as an unrestricted caller, a caller
// scoped to a device, and callers scoped to a parameter prefix by an API
// key (tenantA) and by a JWT (tenantB).
func testHostileCorpus(t *testing.T, pool *pgxpool.Pool, r *reference) {
	c := loadCorpus(t)
	f := newAccessFixture(t, pool, nil)
	callers := []*hostileCaller{
		{key: "admin", tenant: f.tenant("admin"),
			series: [2]string{"device.foo", "parameter.foo"}, other: [2]string{"device.foo", "parameter.bar"}},
		{key: "foo", tenant: f.tenant("foo"),
			series: [2]string{"device.foo", "parameter.foo"}, other: [2]string{"device.foo", "parameter.bar"}},
		{key: "tenantA", tenant: f.tenant("tenantA"),
			series: [2]string{"device.foo", "tenantA.deviceFoo.datasourceA.bar"}, other: [2]string{"device.foo", "tenantA.deviceFoo.datasourceB.batch"}},
		{key: "tenantB", tenant: f.tenant("tenantB (JWT)"),
			series: [2]string{"device.foo", "tenantB.datasourceA.bfaz"}, other: [2]string{"device.bar", "tenantB.deviceBar.datasourceB.cat"}},
	}
	for _, caller := range callers {
		if !slices.Contains(hostileCallerKeys, caller.key) {
			t.Fatalf("caller %s is missing from hostileCallerKeys", caller.key)
		}
		t.Run(caller.key, func(t *testing.T) {
			caller.setup(t, f, r)
			for _, tc := range c.cases {
				replayCase(t, f.ts, caller, tc)
			}
		})
	}
	t.Logf("%d corpus cases for each of %d callers", len(c.cases), len(callers))
}

// setup computes the caller's macros and scope.
func (c *hostileCaller) setup(t *testing.T, f *accessFixture, r *reference) {
	t.Helper()
	ts := f.ts
	q := func(s [2]string) string {
		return url.Values{"device_id": {s[0]}, "parameter": {s[1]}}.Encode()
	}
	next := func(who tenant, query string) string {
		t.Helper()
		var p readingsPageJSON
		ts.getJSON(t, "/v1/readings?"+query+"&limit=5", http.StatusOK, &p, who.header)
		if p.NextCursor == "" {
			t.Fatalf("%s: no next_cursor for %s", who.name, query)
		}
		return p.NextCursor
	}
	cur := next(c.tenant, q(c.series))
	pos, err := cursor.NewCodec(testCursorKey).Decode(cur)
	if err != nil {
		t.Fatal(err)
	}
	c.seriesID = pos.SeriesID
	body, sig, _ := strings.Cut(cur, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 0x01
		return string(b)
	}
	c.macros = map[string]string{
		"{series}":                 q(c.series),
		"{device}":                 url.QueryEscape(c.series[0]),
		"{parameter}":              url.QueryEscape(c.series[1]),
		"{other}":                  q(c.other),
		"{day}":                    "from=2024-03-07T00:00:00Z&to=2024-03-08T00:00:00Z",
		"{cursor}":                 cur,
		"{cursor.desc}":            next(c.tenant, q(c.series)+"&order=desc"),
		"{cursor.ranged}":          next(c.tenant, q(c.series)+"&from=2024-03-01T00%3A00%3A00Z&to=2024-04-01T00%3A00%3A00Z"),
		"{cursor.other}":           next(c.tenant, q(c.other)),
		"{cursor.admin-bar}":       next(f.tenant("admin"), "device_id=device.bar&parameter=tenantB.deviceBar.datasourceB.cat"),
		"{cursor.tenantB}":         next(f.tenant("tenantB (JWT)"), "device_id=device.bar&parameter=tenantB.deviceBar.datasourceB.cat"),
		"{cursor.flipped-payload}": flip(body, len(body)/3) + "." + sig,
		"{cursor.flipped-sig}":     body + "." + flip(sig, len(sig)/2),
		"{cursor.truncated}":       cur[:len(cur)-4],
		"{cursor.unsigned}":        body,
		"{cursor.foreign}":         foreignCursor(cur),
	}
	c.devices = map[string]bool{}
	params := map[string]bool{}
	for k := range r.series {
		device, parameter, _ := strings.Cut(k, "\x00")
		if c.tenant.allows(device, parameter) {
			c.devices[device] = true
			params[parameter] = true
		}
	}
	c.outside = nil
	for k := range r.series {
		device, parameter, _ := strings.Cut(k, "\x00")
		if !c.devices[device] && !slices.Contains(c.outside, device) {
			c.outside = append(c.outside, device)
		}
		if !params[parameter] && !slices.Contains(c.outside, parameter) {
			c.outside = append(c.outside, parameter)
		}
	}
}

var (
	repeatRe = regexp.MustCompile(`\{repeat (\d+) ([^{}]*)\}`)
	fillRe   = regexp.MustCompile(`\{fill (\d+)\}`)
	signedRe = regexp.MustCompile(`\{signed ([^{}]*)\}`)
	macroRe  = regexp.MustCompile(`\{[A-Za-z.-]+\}`)
)

// expand replaces the macros of s: the caller's ({series}, {cursor}, ...),
// {repeat N text}, {signed k=v ...} (a cursor payload signed with the
// test server's key) and {fill N}, which pads s to N bytes.
func (c *hostileCaller) expand(t *testing.T, s string) string {
	t.Helper()
	s = expandRepeat(s)
	s = signedRe.ReplaceAllStringFunc(s, func(m string) string {
		return c.signed(t, signedRe.FindStringSubmatch(m)[1])
	})
	s = macroRe.ReplaceAllStringFunc(s, func(m string) string {
		v, ok := c.macros[m]
		if !ok {
			t.Fatalf("unknown macro %s", m)
		}
		return v
	})
	if m := fillRe.FindStringSubmatchIndex(s); m != nil {
		n, _ := strconv.Atoi(s[m[2]:m[3]])
		pad := n - (len(s) - (m[1] - m[0]))
		if pad < 0 {
			t.Fatalf("{fill %d}: the rest is already %d bytes", n, len(s)-(m[1]-m[0]))
		}
		s = s[:m[0]] + strings.Repeat("a", pad) + s[m[1]:]
	}
	return s
}

// expandRepeat replaces {repeat N text} with N times text.
func expandRepeat(s string) string {
	return repeatRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := repeatRe.FindStringSubmatch(m)
		n, _ := strconv.Atoi(sub[1])
		return strings.Repeat(sub[2], n)
	})
}

// signed returns a cursor whose payload has the fields "k=v k=v" (numbers
// bare, "self" the caller's series id, anything else a string), signed
// with the key of the test server: what a client holding the key (or a
// bug in the server) could send.
func (c *hostileCaller) signed(t *testing.T, fields string) string {
	t.Helper()
	var b strings.Builder
	b.WriteByte('{')
	for i, f := range strings.Fields(fields) {
		k, v, _ := strings.Cut(f, "=")
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k) + ":")
		switch _, err := strconv.ParseInt(v, 10, 64); {
		case v == "self":
			b.WriteString(strconv.Itoa(int(c.seriesID)))
		case err == nil:
			b.WriteString(v)
		default:
			b.WriteString(strconv.Quote(v))
		}
	}
	b.WriteByte('}')
	mac := hmac.New(sha256.New, testCursorKey)
	mac.Write([]byte(b.String()))
	return base64.RawURLEncoding.EncodeToString([]byte(b.String())) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// replayCase sends tc as the caller and checks the answer.
func replayCase(t *testing.T, ts *testServer, caller *hostileCaller, tc hostileCase) {
	t.Helper()
	where := fmt.Sprintf("%s:%d (%s)", hostileCorpus, tc.line, tc.comment)
	want := tc.expect
	if o, ok := tc.override[caller.key]; ok {
		want = o
	}
	target := caller.expand(t, tc.target)
	var headers []string
	credentials := true
	for _, h := range tc.headers {
		if strings.EqualFold(h.name, "Authorization") || strings.EqualFold(h.name, "X-API-Key") {
			credentials = false // the case sends its own
		}
		value := caller.expand(t, h.value)
		if h.count == 0 {
			headers = append(headers, h.name+": "+value)
			continue
		}
		for i := range h.count {
			headers = append(headers, strings.ReplaceAll(h.name, "#", strconv.Itoa(i))+": "+value)
		}
	}
	if credentials {
		headers = append(headers, caller.tenant.header)
	}
	resp, body, err := rawRequest(ts.url, tc.method, target, headers)
	if err != nil {
		t.Errorf("%s: %s %.200s: %v", where, tc.method, target, err)
		return
	}
	short := target
	if len(short) > 200 {
		short = fmt.Sprintf("%s... (%d bytes)", short[:200], len(target))
	}
	ct := resp.Header.Get("Content-Type")
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf("%s: %s %s: %s; got %d %s %.300s", where, tc.method, short, fmt.Sprintf(format, args...), resp.StatusCode, ct, body)
	}
	switch {
	case resp.StatusCode >= 500:
		fail("a 5xx")
		return
	case want.status != 0 && resp.StatusCode != want.status, want.status == 0 && resp.StatusCode/100 != want.class:
		fail("want %s", want)
		return
	}
	path, _, _ := strings.Cut(target, "?")
	legacy := path == "/api/v1/core/process_request"
	switch {
	case want.plain:
		if !strings.HasPrefix(ct, "text/plain") {
			fail("net/http's own answer is text/plain")
		}
	case resp.StatusCode >= 400 && legacy:
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil || ct != mediaJSON || len(m) != 1 || m["message"] == nil || m["message"] == "" {
			fail(`want the original service's {"message": ...} as application/json`)
		}
	case resp.StatusCode >= 400:
		var p problem
		if err := json.Unmarshal(body, &p); err != nil || ct != "application/problem+json" || p.Status != resp.StatusCode || p.Title == "" {
			fail("want a problem document with status %d", resp.StatusCode)
		} else if want.location != "" && !slices.ContainsFunc(p.Errors, func(e struct {
			Message  string `json:"message"`
			Location string `json:"location"`
		}) bool {
			return e.Location == want.location
		}) {
			fail("the problem does not name %s", want.location)
		}
	case want.empty:
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			fail("want a JSON body with empty lists")
		}
		for name, v := range m {
			if bytes.HasPrefix(v, []byte("[")) && !bytes.Equal(v, []byte("[]")) {
				fail("%s is not empty", name)
			}
		}
	}
	if !want.plain && tc.method != http.MethodHead {
		if req, err := http.NewRequest(tc.method, ts.url+target, nil); err == nil {
			for _, h := range headers {
				name, value, _ := strings.Cut(h, ": ")
				req.Header.Add(name, value)
			}
			validateResponse(t, req, response{Response: resp, Body: body})
		} else if resp.StatusCode < 400 {
			fail("the target does not parse as a URL (%v), yet the answer is not an error", err)
		}
	}
	caller.checkScope(t, where, target, headers, resp, body)
}

// checkScope fails when body holds a series or device outside the caller's
// scope: as a JSON object's device_id (and parameter), or anywhere by name
// unless the request itself named it (an error may quote its input).
func (c *hostileCaller) checkScope(t *testing.T, where, target string, headers []string, resp *http.Response, body []byte) {
	t.Helper()
	request := target + "\n" + strings.Join(headers, "\n")
	if u, err := url.QueryUnescape(target); err == nil {
		request += "\n" + u
	}
	for _, name := range c.outside {
		if strings.Contains(request, name) {
			continue
		}
		for i := 0; ; {
			j := bytes.Index(body[i:], []byte(name))
			if j < 0 {
				break
			}
			j += i
			end := j + len(name)
			if (j == 0 || !nameByte(body[j-1])) && (end == len(body) || !nameByte(body[end])) {
				t.Errorf("%s: %s is outside the scope of %s, yet the answer %d holds it: %.300s", where, name, c.tenant.name, resp.StatusCode, body)
				break
			}
			i = end
		}
	}
	if resp.StatusCode >= 300 {
		return
	}
	var docs []any
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			break // the end, or not JSON (CSV): the name check above covers it
		}
		docs = append(docs, v)
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			device, hasDevice := x["device_id"].(string)
			parameter, hasParameter := x["parameter"].(string)
			switch {
			case hasDevice && hasParameter && !c.tenant.allows(device, parameter):
				t.Errorf("%s: %s answered series %s/%s, outside its scope", where, c.tenant.name, device, parameter)
			case hasDevice && !hasParameter && !c.devices[device]:
				t.Errorf("%s: %s answered device %s, outside its scope", where, c.tenant.name, device)
			}
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, d := range docs {
		walk(d)
	}
}

// nameByte reports whether b may be part of a device id or parameter name,
// so that "parameter.foo" is not found inside "parameter.foobar".
func nameByte(b byte) bool {
	return b == '.' || b == '_' || b == '-' || b >= '0' && b <= '9' || b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z'
}

// rawRequest sends method and target byte for byte on a new connection to
// baseURL (an http:// URL): net/http's client would clean, escape or refuse
// much of what the corpus sends.
func rawRequest(baseURL, method, target string, headers []string) (*http.Response, []byte, error) {
	addr := strings.TrimPrefix(baseURL, "http://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: " + addr + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	// Written while the answer is read: a server that answers before reading
	// the whole request (431) would otherwise dead-lock with a writer blocked
	// on a full socket buffer.
	go func() { _, _ = io.WriteString(conn, b.String()) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read body: %w", err)
	}
	return resp, body, nil
}
