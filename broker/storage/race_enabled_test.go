//go:build race

package storage

// raceDetector: the race detector slows the randomized compaction tests
// some hundredfold, so they run fewer cases under it.
const raceDetector = true
