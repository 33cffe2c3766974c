package transforms

import "runtime"

// bytesAllocatedBy returns the bytes f allocated: TotalAlloc counts them
// whatever the collector does meanwhile. The allocation tests compare it with
// the bytes of the events a step handles.
func bytesAllocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
