//go:build prism_patched

package pipelines

// Built by make: the Beam SDK is replaced by the copy with pipelines/prism's
// patch (see PrismRetriesBundles).
const prismPatched = true
