// Command campaignpulse runs the Campaign Pulse pipeline. Locally (the
// default) it generates traffic, runs on the Prism runner and writes an
// embedded DuckDB warehouse, then prints a summary that reconciles every
// input event:
//
//	go run ./cmd/campaignpulse --events=200000
//
// Run with --help for every flag.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/campaignpulse/campaignpulse/pipelines"
)

func main() {
	opts := pipelines.RegisterFlags(flag.CommandLine)
	reset := flag.Bool("reset", true, "empty the warehouse tables before the run, so its summary reconciles this run alone")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (pipeline and Prism) to this file")
	flag.Parse()
	beam.Init()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "campaignpulse:", err)
			os.Exit(pipelines.ExitFailed)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "campaignpulse:", err)
			os.Exit(pipelines.ExitFailed)
		}
		code := pipelines.Main(opts, *reset)
		pprof.StopCPUProfile()
		f.Close()
		os.Exit(code)
	}
	os.Exit(pipelines.Main(opts, *reset))
}
