package dataset

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// What a message quotes from the input is bounded here. The input is
// untrusted: a document nested 10,000 deep, a 1 MiB string or a 100 KiB
// device id must not turn an error, a log line or a line of the rejects file
// into hundreds of kilobytes that no person reads. Each bound keeps the head
// of what it cuts (and, for a JSON pointer, the tail) and says how much it
// left out, so that the message still names the place; the Position's line
// and byte offset lead to the whole of it in the file.
const (
	// maxQuoteBytes bounds a value quoted in a reason (a timestamp, a
	// number, a type, a member name, a device id): every valid timestamp,
	// number and type fits, and of anything longer its start says what it
	// is. Escapes may inflate a quoted value up to fourfold, so quote also
	// keeps the quoted form near this size.
	maxQuoteBytes = 100
	// maxReasonBytes is the last guard on a reason and on what a
	// FatalError adds to its position. The reasons built here stay well
	// below it (a quoted value and a sentence); it cuts only text from a
	// cause that nobody foresaw, such as the message of a library.
	maxReasonBytes = 512
	// maxPointerBytes and maxPointerSegments bound a JSON pointer in a
	// Position: about two lines of a terminal. A longer or deeper pointer
	// keeps its head (the device, the reading, the member: where in the
	// document) and its tail (where the parser stopped), and says how many
	// segments or bytes lie between. The budgets below keep the cut pointer
	// itself within both bounds (104 + 46 for the marker + 48 bytes; 12 +
	// 1 + 3 segments), so cutting it again leaves it as it is.
	maxPointerBytes     = 200
	maxPointerSegments  = 16
	pointerHeadBytes    = 104
	pointerHeadSegments = 12
	pointerTailBytes    = 48
	pointerTailSegments = 3
	// maxPointerTokenBytes bounds the device id in the pointer of a
	// reference reading. It is cut before the pointer is built, so that a
	// device with a huge id does not cost a huge pointer per reading; the
	// cut token escaped (at most twice as long), its marker and an index
	// stay within maxPointerBytes, and cutPointer leaves them alone.
	maxPointerTokenBytes = 64
	// MaxRawBytes bounds RecordError.Raw: every reading with ids and a text
	// of a sane length fits whole, and a reject of a hostile record (a 1 MiB
	// line, a document nested 10,000 deep) keeps what a person reads, not a
	// megabyte of it per reject held in memory and written to a file.
	MaxRawBytes = 4 << 10
)

// runeCut returns the length of the longest head of s of at most n bytes
// that does not split a UTF-8 sequence. Bytes that start no rune within the
// last utf8.UTFMax positions are invalid UTF-8 anyway and are cut at n.
func runeCut[S ~string | ~[]byte](s S, n int) int {
	if len(s) <= n {
		return len(s)
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return i
		}
	}
	return n
}

// runeCutTail returns the start of the longest tail of s of at most n bytes
// that does not split a UTF-8 sequence.
func runeCutTail(s string, n int) int {
	if len(s) <= n {
		return 0
	}
	j := len(s) - n
	for k := j; k < len(s) && k < j+utf8.UTFMax; k++ {
		if utf8.RuneStart(s[k]) {
			return k
		}
	}
	return j
}

// cutText returns s when it holds at most n bytes, and otherwise its head
// followed by "… (1,234 more bytes)".
func cutText(s string, n int) string {
	i := runeCut(s, n)
	if i == len(s) {
		return s
	}
	return s[:i] + moreBytes(int64(len(s)-i))
}

// excerpt bounds a value that a reason shows as it is, such as a number.
func excerpt(s string) string { return cutText(s, maxQuoteBytes) }

// quote quotes a value for a reason, as "abcd…" (1,234 more bytes) when it is
// long. Escapes can make the quoted form four times the value (\x00), so the
// value is cut shorter until its quoted form is near maxQuoteBytes.
func quote(s string) string {
	i := runeCut(s, maxQuoteBytes)
	q := strconv.Quote(s[:i])
	for len(q) > maxQuoteBytes+2 && i > 0 {
		i = runeCut(s, i/2)
		q = strconv.Quote(s[:i])
	}
	if i == len(s) {
		return q
	}
	return strconv.Quote(s[:i]+"…") + " (" + more(int64(len(s)-i), "byte") + ")"
}

// moreBytes is the marker of n bytes cut: "… (1,234 more bytes)".
func moreBytes(n int64) string { return "… (" + more(n, "byte") + ")" }

// more says "1,234 more bytes" or "1 more byte".
func more(n int64, unit string) string {
	if n != 1 {
		unit += "s"
	}
	return count(n) + " more " + unit
}

// count formats n with thousands separators, as 9,994: the counts of cut
// bytes and segments are read, not parsed.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 || len(s) <= 3 {
		return s
	}
	b := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// cutPointer bounds a JSON pointer to maxPointerBytes and maxPointerSegments:
// a deep one becomes /dev/0/parameter/0/0/0/0/0/0/0/0/0/… (9,988 more
// segments)/0/0/0, one with a huge token /dddd… (102,331 more bytes)/17. The
// result is meant to be read; it is a valid pointer only when nothing was cut.
func cutPointer(p string) string {
	if len(p) <= maxPointerBytes && strings.Count(p, "/") <= maxPointerSegments {
		return p
	}
	// The head: whole segments, each starting with '/', while they fit.
	i := 0
	for segs := 0; segs < pointerHeadSegments && i < len(p); segs++ {
		end := len(p)
		if k := strings.IndexByte(p[i+1:], '/'); k >= 0 {
			end = i + 1 + k
		}
		if end > pointerHeadBytes {
			break
		}
		i = end
	}
	// The tail: whole segments after the head, while they fit.
	j := len(p)
	for segs := 0; segs < pointerTailSegments; segs++ {
		k := strings.LastIndexByte(p[i:j], '/')
		if k <= 0 || len(p)-(i+k) > pointerTailBytes {
			break
		}
		j = i + k
	}
	whole := (i == len(p) || p[i] == '/') && i > 0 && j < len(p)
	if !whole {
		// A segment too long for the head or the tail: cut inside it, on
		// rune boundaries and not inside a ~0 or ~1 escape.
		if i == 0 {
			i = runeCut(p, pointerHeadBytes)
			if i > 0 && p[i-1] == '~' {
				i--
			}
		}
		if j == len(p) {
			j = runeCutTail(p, pointerTailBytes)
			if j > 0 && p[j-1] == '~' {
				j++
			}
			if j <= i { // a short pointer of many segments: no room for a tail
				j = len(p)
			}
		}
	}
	mid := p[i:j]
	b := make([]byte, 0, maxPointerBytes)
	b = append(b, p[:i]...)
	if whole {
		b = append(append(append(b, "/… ("...), more(int64(strings.Count(mid, "/")), "segment")...), ')')
	} else {
		// Keep a '/' that starts or ends the cut part, so that whole
		// segments on either side still read as segments.
		if strings.HasPrefix(mid, "/") {
			b, mid = append(b, '/'), mid[1:]
		}
		slash := strings.HasSuffix(mid, "/")
		if slash {
			mid = mid[:len(mid)-1]
		}
		b = append(b, moreBytes(int64(len(mid)))...)
		if slash {
			b = append(b, '/')
		}
	}
	return string(append(b, p[j:]...))
}
