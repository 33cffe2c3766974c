//go:build !prism_patched

package pipelines

// Built without make: the Beam SDK as released (see PrismRetriesBundles).
const prismPatched = false
