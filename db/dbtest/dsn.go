package dbtest

import (
	"net/url"
	"strings"
)

// withDatabase points dsn, a URL or keyword/value string, at dbname.
func withDatabase(dsn, dbname string) string {
	if u, ok := parseURL(dsn); ok {
		u.Path, u.RawPath = "/"+dbname, ""
		return u.String()
	}
	return dsn + " dbname=" + quoteKV(dbname)
}

// withUser replaces the credentials in dsn.
func withUser(dsn, user, password string) string {
	if u, ok := parseURL(dsn); ok {
		u.User = url.UserPassword(user, password)
		return u.String()
	}
	// In keyword/value strings the last occurrence of a key wins.
	return dsn + " user=" + quoteKV(user) + " password=" + quoteKV(password)
}

func parseURL(dsn string) (*url.URL, bool) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return nil, false
	}
	u, err := url.Parse(dsn)
	return u, err == nil
}

func quoteKV(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
