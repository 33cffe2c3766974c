package pipelines

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestProcessCPUReadsProc checks the /proc readings a streaming run reports
// against the kernel's own account of this process (getrusage): after a
// burst of work, this process's time in /proc/<pid>/stat, its process
// group's and the machine's busy time must each have grown by about as much.
func TestProcessCPUReadsProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("reads CPU times from /proc")
	}
	pid, pgid := os.Getpid(), syscall.Getpgrp()
	self0, proc0, group0, machine0 := selfCPU(), processCPU(pid), processGroupCPU(pgid), machineCPU()
	burned := time.Duration(0)
	x := 0
	for burned < 300*time.Millisecond {
		for i := range 1_000_000 {
			x += i ^ x>>3
		}
		burned = selfCPU() - self0
	}
	const tick = time.Second / clockTicks
	proc, group, machine := processCPU(pid)-proc0, processGroupCPU(pgid)-group0, machineCPU()-machine0
	t.Logf("getrusage %v, /proc/%d/stat %v, group %v, machine %v (%d)", burned, pid, proc, group, machine, x&1)
	if proc < burned-5*tick || proc > selfCPU()-self0+5*tick {
		t.Errorf("/proc/%d/stat grew by %v; getrusage by %v", pid, proc, burned)
	}
	if group < proc-5*tick {
		t.Errorf("process group %d grew by %v, less than its member %d (%v)", pgid, group, pid, proc)
	}
	if machine < proc-5*tick {
		t.Errorf("the machine's busy time grew by %v, less than this process's %v", machine, proc)
	}
}

func TestCPUUseLines(t *testing.T) {
	u := CPUUse{Wall: 10 * time.Second, Pipeline: 9 * time.Second, PubSubEmulator: 11 * time.Second, Machine: 20 * time.Second, Cores: 2}
	if got, want := u.Line(), "pipeline=0.90 pubsub_emulator=1.10 machine=2.00/2"; got != want {
		t.Errorf("Line() = %q, want %q", got, want)
	}
	if got, want := u.Seconds(), "pipeline=9.0 pubsub_emulator=11.0 machine=20.0 wall=10.0 cores=2"; got != want {
		t.Errorf("Seconds() = %q, want %q", got, want)
	}
	if got := (CPUUse{}).Line(); got != "" {
		t.Errorf("a zero interval gives %q, want nothing", got)
	}
}
