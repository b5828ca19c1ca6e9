package dataset_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sensorhub/sensorhub/services/ingest/internal/dataset"
	"github.com/sensorhub/sensorhub/services/ingest/internal/gen"
)

// sensorTargetPath finds the reference dataset by walking up from the test's
// directory to the one holding shared/datasets/sensor-target/data.json. It
// skips the test when the dataset is absent, unless CI=true.
func sensorTargetPath(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, "shared", "datasets", "sensor-target", "data.json")
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("shared/datasets/sensor-target/data.json not found above the working directory (CI=true)")
	}
	t.Skip("shared/datasets/sensor-target/data.json not found above the working directory; skipping")
	return ""
}

// independent is one reading as encoding/json decodes it, with its device.
type independent struct {
	Device    string
	Parameter string `json:"parameter"`
	Timestamp string `json:"timestamp"`
	Value     any    `json:"value"`
	Type      string `json:"type"`
	Index     int    // in the device's array
}

// decodeIndependently decodes a reference document with encoding/json, in
// document order.
func decodeIndependently(t testing.TB, doc []byte) []independent {
	t.Helper()
	dec := stdjson.NewDecoder(bytes.NewReader(doc))
	if tok, err := dec.Token(); err != nil || tok != stdjson.Delim('{') {
		t.Fatalf("encoding/json: %v %v", tok, err)
	}
	var out []independent
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var arr []independent
		if err := dec.Decode(&arr); err != nil {
			t.Fatal(err)
		}
		for i := range arr {
			arr[i].Device, arr[i].Index = key.(string), i
		}
		out = append(out, arr...)
	}
	return out
}

// compareIndependently checks every reading equals encoding/json's decode
// of the same document: float64 equality, the same instant and offset.
func compareIndependently(t testing.TB, got []dataset.Reading, want []independent) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d readings, encoding/json decodes %d", len(got), len(want))
	}
	for i, r := range got {
		if err := sameReading(r, want[i]); err != nil {
			t.Fatalf("reading %d: %v", i, err)
		}
	}
}

func sameReading(r dataset.Reading, w independent) error {
	if r.DeviceID != w.Device || r.Parameter != w.Parameter || r.Type.String() != w.Type {
		return fmt.Errorf("got %s, want %+v", render(r), w)
	}
	switch v := w.Value.(type) {
	case float64:
		if r.Type != dataset.Numeric || r.Num != v {
			return fmt.Errorf("got %s, want number %v", render(r), v)
		}
	case string:
		if r.Type != dataset.Text || r.Text != v {
			return fmt.Errorf("got %s, want text %q", render(r), v)
		}
	default:
		return fmt.Errorf("encoding/json value %T", v)
	}
	wt, err := time.Parse(time.RFC3339Nano, w.Timestamp)
	if err != nil {
		return err
	}
	_, wo := wt.Zone()
	if _, o := r.Time.Zone(); !r.Time.Equal(wt) || o != wo {
		return fmt.Errorf("time %v, want %v", r.Time, wt)
	}
	return nil
}

func pathOf(w independent) string {
	return "/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(w.Device) + "/" + strconv.Itoa(w.Index)
}

func TestSensorTargetDataset(t *testing.T) {
	path := sensorTargetPath(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if len(data) != 4161364 || hex.EncodeToString(sum[:]) != "d2613719ab81496fed44d20d768dcbbf4e1798b5f46a6d830f76a89a285cab18" {
		t.Fatalf("data.json is %d bytes with sha256 %x, not the dataset the README describes", len(data), sum)
	}

	// Stream from the file, as the loader will.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := dataset.NewReader(f, dataset.Options{File: "data.json"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Format() != dataset.Reference {
		t.Fatalf("detected %v", r.Format())
	}
	var readings []dataset.Reading
	var positions []dataset.Position
	for {
		rd, pos, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%v", err)
		}
		checkReading(t, rd, dataset.Options{})
		readings, positions = append(readings, rd), append(positions, pos)
	}

	// The facts of the README.
	type series struct{ device, parameter string }
	seriesType := map[series]dataset.ValueType{}
	perDevice := map[string]int{}
	seen := map[string]bool{}
	texts := map[string]bool{}
	var numeric, text int
	minT, maxT := readings[0].Time, readings[0].Time
	minV, maxV := 1e308, -1e308
	letters := regexp.MustCompile(`^[A-Za-z]{1,20}$`)
	for _, rd := range readings {
		s := series{rd.DeviceID, rd.Parameter}
		if typ, ok := seriesType[s]; ok && typ != rd.Type {
			t.Errorf("series %v holds both %v and %v", s, typ, rd.Type)
		}
		seriesType[s] = rd.Type
		perDevice[rd.DeviceID]++
		key := rd.DeviceID + "|" + rd.Parameter + "|" + rd.Time.UTC().String()
		if seen[key] {
			t.Errorf("duplicate reading %s", key)
		}
		seen[key] = true
		if rd.OffsetMinutes() != 120 {
			t.Errorf("offset %d minutes in %s", rd.OffsetMinutes(), render(rd))
		}
		if rd.Time.Before(minT) {
			minT = rd.Time
		}
		if rd.Time.After(maxT) {
			maxT = rd.Time
		}
		if rd.Type == dataset.Numeric {
			numeric++
			minV, maxV = min(minV, rd.Num), max(maxV, rd.Num)
		} else {
			text++
			texts[rd.Text] = true
			if !letters.MatchString(rd.Text) {
				t.Errorf("text %q is not 1..20 ASCII letters", rd.Text)
			}
		}
	}
	if len(readings) != 20000 || numeric != 10588 || text != 9412 {
		t.Errorf("%d readings, %d numeric, %d text; want 20000, 10588, 9412", len(readings), numeric, text)
	}
	if len(seriesType) != 34 || len(perDevice) != 2 || perDevice["device.foo"] != 10000 || perDevice["device.bar"] != 10000 {
		t.Errorf("%d series over devices %v; want 34 over device.foo and device.bar with 10000 each", len(seriesType), perDevice)
	}
	for _, d := range []string{"device.foo", "device.bar"} {
		n := 0
		for s := range seriesType {
			if s.device == d {
				n++
			}
		}
		if n != 17 {
			t.Errorf("%s has %d series, want 17", d, n)
		}
	}
	if got := minT.Format(time.RFC3339Nano) + " " + maxT.Format(time.RFC3339Nano); got != "2024-03-07T02:34:07.325831+02:00 2024-03-07T12:22:07.325847+02:00" {
		t.Errorf("time range %s", got)
	}
	if !strings.HasPrefix(strconv.FormatFloat(minV, 'g', -1, 64), "0.0759") || !strings.HasPrefix(strconv.FormatFloat(maxV, 'g', -1, 64), "999.84") || len(texts) != 9365 {
		t.Errorf("numeric range %v..%v, %d distinct texts", minV, maxV, len(texts))
	}

	// Every reading equals an independent decode, at its own place.
	want := decodeIndependently(t, data)
	compareIndependently(t, readings, want)
	paths := make([]string, len(want))
	for i, w := range want {
		paths[i] = pathOf(w)
	}
	for i := range positions {
		if positions[i].File != "data.json" {
			t.Fatalf("position %+v", positions[i])
		}
	}
	checkReferencePositions(t, data, positions, paths)
}

func TestSensorTargetCorrupted(t *testing.T) {
	data, err := os.ReadFile(sensorTargetPath(t))
	if err != nil {
		t.Fatal(err)
	}
	checkCorrupted(t, data)
}

// TestGeneratedCorrupted runs the corruption check on a generated document,
// so that it runs where the reference dataset is absent.
func TestGeneratedCorrupted(t *testing.T) {
	var buf bytes.Buffer
	_, err := gen.Write(&buf, gen.Config{
		Seed: 7, Devices: 2, Params: 17, TextShare: 0.47, Points: 600,
		Start:    time.Date(2024, 3, 7, 2, 34, 7, 325831000, time.FixedZone("", 7200)),
		Interval: time.Minute, Format: dataset.Reference,
	})
	if err != nil {
		t.Fatal(err)
	}
	checkCorrupted(t, buf.Bytes())
}

var (
	valueRE     = regexp.MustCompile(`"value":\s*("[^"]*"|[^,}\s]+)`)
	timestampRE = regexp.MustCompile(`"timestamp":\s*"[^"]*"`)
	typeRE      = regexp.MustCompile(`"type":\s*"text"`)
)

// checkCorrupted breaks a few readings of a valid reference document in
// known ways, truncates it, and checks the Reader yields every good reading,
// one RecordError per broken reading at its place, and a fatal error at the
// truncation.
func checkCorrupted(t *testing.T, doc []byte) {
	clean := readAll(t, doc, dataset.Options{})
	if clean.fatal != nil || len(clean.rejects) > 0 || len(clean.readings) < 20000 {
		t.Fatalf("clean document: %d readings, %v, %v", len(clean.readings), clean.rejects, clean.fatal)
	}
	want := decodeIndependently(t, doc)
	compareIndependently(t, clean.readings, want)

	firstOfType := func(from int, typ dataset.ValueType) int {
		for i := from; ; i++ {
			if clean.readings[i].Type == typ {
				return i
			}
		}
	}
	type edit struct {
		index  int
		field  string
		reason string
		apply  func(obj []byte) []byte
	}
	replaceFirst := func(re *regexp.Regexp, with string) func([]byte) []byte {
		return func(obj []byte) []byte {
			loc := re.FindIndex(obj)
			return slices.Concat(obj[:loc[0]], []byte(with), obj[loc[1]:])
		}
	}
	edits := []edit{
		{firstOfType(100, dataset.Numeric), "value", "JSON string but type is numeric", replaceFirst(valueRE, `"value": "oops"`)},
		{firstOfType(3000, dataset.Text), "value", "not a boolean", replaceFirst(valueRE, `"value": true`)},
		{7000, "timestamp", "not an RFC 3339 timestamp", replaceFirst(timestampRE, `"timestamp": "2024-03-07T25:61:00+02:00"`)},
		{firstOfType(12000, dataset.Text), "value", "JSON string but type is numeric", replaceFirst(typeRE, `"type": "numeric"`)},
		{14000, "parameter", "duplicate member name", func(obj []byte) []byte { return slices.Concat([]byte(`{"parameter": "dup", `), obj[1:]) }},
		{firstOfType(14500, dataset.Numeric), "value", "beyond float64 range", replaceFirst(valueRE, `"value": 1e999`)},
	}
	truncIndex := 15000

	// Apply the edits in document order; a reading shifts by the size
	// changes of the edits before it.
	var corrupted []byte
	deltas := make([]int64, len(edits))
	prev := int64(0)
	for n, e := range edits {
		start := clean.positions[e.index].Offset
		next := clean.positions[e.index+1].Offset
		end := start + int64(bytes.LastIndexByte(doc[start:next], '}')) + 1
		newObj := e.apply(bytes.Clone(doc[start:end]))
		corrupted = append(append(corrupted, doc[prev:start]...), newObj...)
		deltas[n] = int64(len(newObj)) - (end - start)
		prev = end
	}
	corrupted = append(corrupted, doc[prev:]...)
	shift := func(i int) (s int64) {
		for n, e := range edits {
			if e.index < i {
				s += deltas[n]
			}
		}
		return s
	}
	cut := clean.positions[truncIndex].Offset + shift(truncIndex) + 40
	corrupted = corrupted[:cut]

	res := readAll(t, corrupted, dataset.Options{File: "corrupted.json"})

	// Good readings: all before the truncation but the edited ones, equal to
	// the clean ones at the shifted offset.
	isEdited := map[int]bool{}
	for _, e := range edits {
		isEdited[e.index] = true
	}
	var wantGood []int
	for i := range truncIndex {
		if !isEdited[i] {
			wantGood = append(wantGood, i)
		}
	}
	if len(res.readings) != len(wantGood) {
		t.Fatalf("%d good readings, want %d", len(res.readings), len(wantGood))
	}
	for j, i := range wantGood {
		if err := sameReading(res.readings[j], want[i]); err != nil {
			t.Fatalf("good reading %d (index %d): %v", j, i, err)
		}
		p, cp := res.positions[j], clean.positions[i]
		if p.Offset != cp.Offset+shift(i) || p.Line != cp.Line || p.Path != cp.Path || p.File != "corrupted.json" {
			t.Fatalf("good reading %d at %+v, want %+v shifted by %d", j, p, cp, shift(i))
		}
	}

	// One RecordError per broken reading, at its place.
	if len(res.rejects) != len(edits) {
		t.Fatalf("rejects %v, want %d", res.rejects, len(edits))
	}
	for k, e := range edits {
		re, cp := res.rejects[k], clean.positions[e.index]
		wantPos := dataset.Position{File: "corrupted.json", Line: cp.Line, Offset: cp.Offset + shift(e.index), Path: pathOf(want[e.index])}
		if re.Pos != wantPos || re.Field != e.field || !strings.Contains(re.Reason, e.reason) {
			t.Errorf("reject %d = %v (field %q), want %+v %s: ...%s...", k, re, re.Field, wantPos, e.field, e.reason)
		}
		if !bytes.HasPrefix(corrupted[re.Pos.Offset:], re.Raw) || re.Raw[0] != '{' || re.Raw[len(re.Raw)-1] != '}' {
			t.Errorf("reject %d raw %q is not the object at its offset", k, re.Raw)
		}
	}

	// A fatal error naming the truncation.
	var fe *dataset.FatalError
	if !errors.As(res.fatal, &fe) || !errors.Is(res.fatal, io.ErrUnexpectedEOF) {
		t.Fatalf("fatal = %v, want an unexpected EOF", res.fatal)
	}
	truncPath := pathOf(want[truncIndex])
	if fe.Pos.Offset != int64(len(corrupted)) || !strings.HasPrefix(fe.Pos.Path, truncPath) ||
		fe.Pos.Line != int64(bytes.Count(corrupted, []byte{'\n'})+1) || fe.Pos.File != "corrupted.json" {
		t.Errorf("fatal at %+v, want offset %d within %s", fe.Pos, len(corrupted), truncPath)
	}
	if msg := fe.Error(); !strings.Contains(msg, "corrupted.json:") || !strings.Contains(msg, truncPath) || !strings.Contains(msg, strconv.Itoa(len(corrupted))) {
		t.Errorf("fatal message %q does not name the place", msg)
	}
}
