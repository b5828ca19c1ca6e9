//go:build ignore

// Command api-floor is the least a Go server on this stack can spend on one
// GET /v1/aggregates or /v1/readings miss: net/http and pgx, nothing else.
// bench/api.sh runs it beside the API on the same paths to tell how much of
// the gap to pgbench is the API's own (huma's binding, the middlewares, the
// response cache's bookkeeping, logs and metrics) and how much is the HTTP
// round trip, the query over a socket and the JSON any server pays.
//
//	go run bench/api-floor.go -database-url URL -aggregates-sql FILE -readings-sql FILE [-cursor-key KEY] [-addr 127.0.0.1:0] [-pool-size 10]
//
// The files hold the queries the API runs for hourly buckets served from
// rollup_1h and for a page of readings in time order (store.rollup1hOneSQL
// and store.readingsAscSQL; api.sh writes them with `go run
// bench/api-sqlcheck.go -print services/api/internal/store NAME`). It
// answers only what the benchmark's paths ask: aggregates of one numeric
// parameter of a device from and to whole hours with bucket=1h and agg=avg;
// readings of one parameter from a time with a limit, signing the next
// page's cursor as the API does with -cursor-key (its SENSORHUB_CURSOR_KEY).
// Its bodies are the API's, byte for byte, which api.sh checks; anything
// else is a 400. It has no authentication, no limits, no cache, no log and
// no metrics: it is a measuring stick, not a server to run.
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	dsn := flag.String("database-url", "", "PostgreSQL URL (required)")
	aggFile := flag.String("aggregates-sql", "", "file holding the API's rollup_1h query for buckets of an hour (required)")
	rdFile := flag.String("readings-sql", "", "file holding the API's query of a page of readings in time order (required)")
	cursorKey := flag.String("cursor-key", "", "the API's SENSORHUB_CURSOR_KEY, to sign next-page cursors as it does")
	addr := flag.String("addr", "127.0.0.1:0", "listen address; the address taken is printed as \"listening ADDR\"")
	poolSize := flag.Int("pool-size", 10, "database connections, as the API's -pool-size")
	flag.Parse()
	if *dsn == "" || *aggFile == "" || *rdFile == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*dsn, *aggFile, *rdFile, []byte(*cursorKey), *addr, *poolSize); err != nil {
		fmt.Fprintln(os.Stderr, "api-floor:", err)
		os.Exit(1)
	}
}

// series is one numeric series: its id and names, as JSON strings.
type series struct {
	id                  int32
	deviceJSON, parJSON []byte
}

type server struct {
	pool            *pgxpool.Pool
	aggSQL, rdSQL   string
	cursorKey       []byte
	series          map[[2]string]series
	bufs, readPages sync.Pool
}

func run(dsn, aggFile, rdFile string, cursorKey []byte, addr string, poolSize int) error {
	aggSQL, err := os.ReadFile(aggFile)
	if err != nil {
		return err
	}
	rdSQL, err := os.ReadFile(rdFile)
	if err != nil {
		return err
	}
	ctx := context.Background()
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return err
	}
	pc.MaxConns = int32(poolSize)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return err
	}
	defer pool.Close()
	s := &server{pool: pool, aggSQL: string(aggSQL), rdSQL: string(rdSQL), cursorKey: cursorKey, series: map[[2]string]series{}}
	s.bufs.New = func() any { b := make([]byte, 0, 16<<10); return &b }
	s.readPages.New = func() any { p := make([]reading, 0, 1024); return &p }
	// Resolving names from memory is what the API's series cache does for
	// repeated selections; here it is free for every request.
	rows, err := pool.Query(ctx, `SELECT series_id, device_id, parameter FROM sensorhub.series WHERE value_type = 'numeric'`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id int32
		var dev, par string
		if err := rows.Scan(&id, &dev, &par); err != nil {
			return err
		}
		s.series[[2]string{dev, par}] = series{id: id, deviceJSON: strconv.AppendQuote(nil, dev), parJSON: strconv.AppendQuote(nil, par)}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("listening", ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/aggregates", s.aggregates)
	mux.HandleFunc("GET /v1/readings", s.readings)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	return (&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

func (s *server) aggregates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err1 := time.Parse(time.RFC3339, q.Get("from"))
	to, err2 := time.Parse(time.RFC3339, q.Get("to"))
	sr, ok := s.series[[2]string{q.Get("device_id"), q.Get("parameter")}]
	if err1 != nil || err2 != nil || !ok || q.Get("bucket") != "1h" || q.Get("agg") != "avg" || len(q["parameter"]) != 1 ||
		from.Truncate(time.Hour) != from || to.Truncate(time.Hour) != to || !from.Before(to) || to.Sub(from) > 31*24*time.Hour {
		http.Error(w, "api-floor answers one numeric series' hourly avg over whole hours only", http.StatusBadRequest)
		return
	}
	from, to = from.UTC(), to.UTC()
	starts := make([]time.Time, 0, to.Sub(from)/time.Hour)
	for t := from; t.Before(to); t = t.Add(time.Hour) {
		starts = append(starts, t)
	}
	rows, err := s.pool.Query(r.Context(), s.aggSQL, []int32{sr.id}, []int32{}, starts, from, to)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer rows.Close()
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	b := (*bp)[:0]
	// The stale marker (0, 0), when the rollup was stale, sorts first: the
	// head is written at the first point or at the end, once source is known.
	source, head, n := "rollup_1h", false, 0
	writeHead := func() {
		b = append(b, `{"source":"`...)
		b = append(b, source...)
		b = append(b, `","bucket":"1h","bucket_seconds":3600,"from":"`...)
		b = from.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		b = append(b, `","to":"`...)
		b = to.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		b = append(b, `","tz":"UTC","series":[{"device_id":`...)
		b = append(b, sr.deviceJSON...)
		b = append(b, `,"parameter":`...)
		b = append(b, sr.parJSON...)
		b = append(b, `,"type":"numeric","source":"`...)
		b = append(b, source...)
		b = append(b, `","points":[`...)
		head = true
	}
	for rows.Next() {
		v := rows.RawValues()
		id, i := int32(binary.BigEndian.Uint32(v[0])), int32(binary.BigEndian.Uint32(v[1]))
		if id == 0 && i == 0 {
			source = "raw"
			continue
		}
		if i < 1 || int(i) > len(starts) || v[3] == nil {
			http.Error(w, "unexpected row", http.StatusInternalServerError)
			return
		}
		if !head {
			writeHead()
		}
		count := int64(binary.BigEndian.Uint64(v[2]))
		sum := math.Float64frombits(binary.BigEndian.Uint64(v[3]))
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, `{"time":"`...)
		b = starts[i-1].AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		b = append(b, `","avg":`...)
		b = appendFloat(b, sum/float64(count))
		b = append(b, '}')
	}
	if err := rows.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if !head {
		writeHead()
	}
	b = append(b, "]}]}\n"...)
	*bp = b
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.Write(b)
}

// appendFloat formats f as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// reading is one row of a page.
type reading struct {
	us     int64 // Unix microseconds
	offMin int16
	value  float64
	null   bool
}

// pgEpochMicros is 2000-01-01 in Unix microseconds: binary timestamptz
// counts from there.
const pgEpochMicros = 946684800 * 1_000_000

func (s *server) readings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// from is optional: nil reads from the series' start.
	var from *time.Time
	var err1 error
	if v := q.Get("from"); v != "" {
		var t time.Time
		t, err1 = time.Parse(time.RFC3339, v)
		from = &t
	}
	limit, err2 := strconv.Atoi(q.Get("limit"))
	sr, ok := s.series[[2]string{q.Get("device_id"), q.Get("parameter")}]
	if err1 != nil || err2 != nil || !ok || limit < 1 || limit > 100_000 || len(q) != 3 && (len(q) != 4 || from == nil) {
		http.Error(w, "api-floor answers device_id, parameter, limit and from of a numeric series only", http.StatusBadRequest)
		return
	}
	// The API's scope arguments with authentication off: every device and
	// parameter; no upper bound; one row more than the page tells whether
	// there is a next one.
	rows, err := s.pool.Query(r.Context(), s.rdSQL, true, []string(nil), true, []string(nil), sr.id, from, nil, limit+1)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	pp := s.readPages.Get().(*[]reading)
	defer s.readPages.Put(pp)
	page := (*pp)[:0]
	for rows.Next() {
		v := rows.RawValues()
		if len(v[0]) != 8 || len(v[1]) != 2 {
			rows.Close()
			http.Error(w, "unexpected row", http.StatusInternalServerError)
			return
		}
		rd := reading{us: int64(binary.BigEndian.Uint64(v[0])) + pgEpochMicros, offMin: int16(binary.BigEndian.Uint16(v[1])), null: v[2] == nil}
		if !rd.null {
			rd.value = math.Float64frombits(binary.BigEndian.Uint64(v[2]))
		}
		page = append(page, rd)
	}
	rows.Close()
	*pp = page
	if err := rows.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		next = s.cursor(sr.id, page[limit-1].us, from)
		v := url.Values{}
		v.Set("device_id", q.Get("device_id"))
		v.Set("parameter", q.Get("parameter"))
		if from != nil {
			v.Set("from", from.Format(time.RFC3339Nano))
		}
		v.Set("order", "asc")
		v.Set("limit", strconv.Itoa(limit))
		v.Set("timestamps", "original")
		v.Set("cursor", next)
		w.Header()["Link"] = []string{"</v1/readings?" + v.Encode() + `>; rel="next"`}
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	b := (*bp)[:0]
	b = append(b, `{"device_id":`...)
	b = append(b, sr.deviceJSON...)
	b = append(b, `,"parameter":`...)
	b = append(b, sr.parJSON...)
	b = append(b, `,"type":"numeric","order":"asc"`...)
	if from != nil {
		b = append(b, `,"from":"`...)
		b = from.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
		b = append(b, '"')
	}
	b = append(b, `,"readings":[`...)
	var dates dateCache
	for i := range page {
		rd := &page[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"time":"`...)
		b = dates.append(b, rd.us, rd.offMin)
		b = append(b, `","value":`...)
		if rd.null {
			b = append(b, "null"...)
		} else {
			b = appendFloat(b, rd.value)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"next_cursor":"`...)
		b = append(b, next...)
		b = append(b, '"')
	}
	b = append(b, "}\n"...)
	*bp = b
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.Write(b)
}

// cursor is the API's next-page cursor (package cursor): the position as
// JSON, base64url, a dot, and its HMAC-SHA256, base64url.
func (s *server) cursor(id int32, lastUs int64, from *time.Time) string {
	payload := []byte(`{"v":1,"s":`)
	payload = strconv.AppendInt(payload, int64(id), 10)
	payload = append(payload, `,"t":`...)
	payload = strconv.AppendInt(payload, lastUs, 10)
	payload = append(payload, `,"o":"asc"`...)
	if from != nil {
		payload = append(payload, `,"f":`...)
		payload = strconv.AppendInt(payload, from.UnixMicro(), 10)
	}
	payload = append(payload, '}')
	mac := hmac.New(sha256.New, s.cursorKey)
	mac.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// dateCache formats times as 2006-01-02T15:04:05.000000-07:00 in a given
// offset, formatting the date only when the day changes: the readings of a
// page share a few days.
type dateCache struct {
	day  int64
	date []byte
}

func (c *dateCache) append(b []byte, us int64, offMin int16) []byte {
	local := us + int64(offMin)*60_000_000
	day := local / 86_400_000_000
	if local%86_400_000_000 < 0 {
		day--
	}
	if c.date == nil || day != c.day {
		c.day, c.date = day, time.UnixMicro(day*86_400_000_000).UTC().AppendFormat(c.date[:0], "2006-01-02T")
	}
	b = append(b, c.date...)
	rest := local - day*86_400_000_000
	sec := rest / 1_000_000
	b = append2(b, sec/3600)
	b = append(b, ':')
	b = append2(b, sec/60%60)
	b = append(b, ':')
	b = append2(b, sec%60)
	b = append(b, '.')
	micro := rest % 1_000_000
	for d := int64(100_000); d > 0; d /= 10 {
		b = append(b, byte('0'+micro/d%10))
	}
	if offMin == 0 {
		return append(b, 'Z')
	}
	sign, o := byte('+'), int64(offMin)
	if o < 0 {
		sign, o = '-', -o
	}
	b = append(b, sign)
	b = append2(b, o/60)
	b = append(b, ':')
	return append2(b, o%60)
}

func append2(b []byte, v int64) []byte { return append(b, byte('0'+v/10), byte('0'+v%10)) }
