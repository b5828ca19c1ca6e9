package httpapi

// Guards: huma middleware that refuses, before any operation runs, query
// strings no operation could answer (text PostgreSQL cannot hold, a
// parameter given twice).

import (
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"
)

// rejectUnstorableText answers 400 for a query string that net/url cannot
// parse (a malformed percent-escape, a semicolon) or whose parameters are
// not valid UTF-8 or contain NUL: PostgreSQL text cannot hold them, so no
// series can match, and they must not reach the database as an internal
// error. The problem names the first such parameter in the query's order.
func rejectUnstorableText(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		name, value, reason := badQueryParam(ctx.URL().RawQuery)
		if reason == "" {
			next(ctx)
			return
		}
		name, value = strings.ToValidUTF8(name, "\ufffd"), strings.ToValidUTF8(value, "\ufffd")
		writeError(api, ctx, huma.Error400BadRequest("query parameter "+strconv.Quote(name)+": "+reason,
			&huma.ErrorDetail{Location: "query." + name, Value: value, Message: reason}))
	}
}

// badQueryParam returns the first parameter of a raw query string that is
// malformed or not storable text, and why; reason is "" when there is none.
// It splits the query as url.ParseQuery does, which skips the pairs it
// cannot parse rather than say which they are.
func badQueryParam(rawQuery string) (name, value, reason string) {
	for pair := range strings.SplitSeq(rawQuery, "&") {
		rawName, rawValue, _ := strings.Cut(pair, "=")
		if strings.Contains(pair, ";") {
			return rawName, rawValue, "a semicolon does not separate query parameters; use &"
		}
		name, errName := url.QueryUnescape(rawName)
		value, errValue := url.QueryUnescape(rawValue)
		switch {
		case errName != nil:
			return rawName, rawValue, "malformed percent-escape in the name"
		case errValue != nil:
			return name, rawValue, "malformed percent-escape in the value"
		case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
			return name, value, "the name is not valid UTF-8 text without NUL characters"
		case !utf8.ValidString(value) || strings.ContainsRune(value, 0):
			return name, value, "not valid UTF-8 text without NUL characters"
		}
	}
	return "", "", ""
}

// rejectRepeatedParams answers 400 for a query parameter given more than
// once that takes one value: which one counts is a guess (huma takes the
// first, a proxy or a WAF in front may check the last), and such
// ambiguity is what parameter pollution exploits. Lists (aggregates'
// parameter and agg) may repeat; parameters an operation does not have
// are ignored, repeated or not.
func rejectRepeatedParams(api huma.API) func(huma.Context, func(huma.Context)) {
	return func(ctx huma.Context, next func(huma.Context)) {
		var q url.Values
		for _, p := range ctx.Operation().Parameters {
			if p.In != "query" || p.Schema != nil && p.Schema.Type == huma.TypeArray {
				continue
			}
			if q == nil {
				q, _ = queryValues(ctx) // rejectUnstorableText has answered a query that does not parse
			}
			if values := q[p.Name]; len(values) > 1 {
				msg := "given " + strconv.Itoa(len(values)) + " times; it takes one value"
				writeError(api, ctx, huma.Error400BadRequest("query parameter "+strconv.Quote(p.Name)+" "+msg,
					&huma.ErrorDetail{Location: "query." + p.Name, Value: values, Message: msg}))
				return
			}
		}
		next(ctx)
	}
}
