package httpapi

import (
	"compress/gzip"
	"fmt"
	"net/http"

	"github.com/klauspost/compress/gzhttp"
)

// compressMinSize is the smallest body worth compressing: below it the
// gzip framing and the CPU cost outweigh the bytes saved.
const compressMinSize = 1024

// withCompression compresses responses with gzip or zstd as the request's
// Accept-Encoding allows (q-values honoured, zstd preferred only when the
// client ranks it higher), sets Vary: Accept-Encoding on every answer that
// could have been compressed, and streams: exports are compressed as they
// are flushed. Bodies that arrive already encoded (the /docs assets) pass
// through. Weak ETags stay as they are: the representations differ only in
// transfer coding, which weak comparison allows.
func withCompression(next http.Handler) (http.Handler, error) {
	wrap, err := gzhttp.NewWrapper(
		gzhttp.MinSize(compressMinSize),
		// Speed over ratio: JSON of readings compresses ~8x even at level 1,
		// and the API's CPU is the bottleneck under load.
		gzhttp.CompressionLevel(gzip.BestSpeed),
		gzhttp.EnableZstd(true),
		gzhttp.PreferZstd(false),
	)
	if err != nil {
		return nil, fmt.Errorf("compression middleware: %w", err)
	}
	return wrap(next), nil
}
