package dataset

// What the tests in package dataset_test reach inside for.
var (
	CutPointer = cutPointer
	Quote      = quote
)

const (
	MaxPointerBytes    = maxPointerBytes
	MaxPointerSegments = maxPointerSegments
)
