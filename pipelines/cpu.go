package pipelines

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUUse is the CPU time a local streaming run took, by process, over Wall:
// the pipeline's own process (Prism, the SDK harness, DuckDB and, in make
// run-streaming, the publisher) and the two emulators it shares the machine
// with. A run that falls behind on two cores is told apart from a slow
// pipeline by these figures: the Pub/Sub emulator's cost grows with the
// messages it holds (see the README, Streaming), so a backlog shows up as
// its share rising while the pipeline's falls.
type CPUUse struct {
	Wall             time.Duration
	Pipeline         time.Duration
	PubSubEmulator   time.Duration // zero when the run did not start it
	BigtableEmulator time.Duration // zero when the run did not start it
	// Machine is every process's, from /proc/stat; zero where it is
	// unreadable. The kernel samples it at each tick, so it can read a few
	// percent under the processes' own times (exact scheduler runtime) when
	// they run in short bursts.
	Machine time.Duration
	Cores   int
}

// Sub is the CPU taken between an earlier reading and u.
func (u CPUUse) Sub(earlier CPUUse) CPUUse {
	return CPUUse{
		Wall: u.Wall - earlier.Wall, Pipeline: u.Pipeline - earlier.Pipeline,
		PubSubEmulator: u.PubSubEmulator - earlier.PubSubEmulator, BigtableEmulator: u.BigtableEmulator - earlier.BigtableEmulator,
		Machine: u.Machine - earlier.Machine, Cores: u.Cores,
	}
}

// Line is u in cores (CPU seconds a second of wall time), for the progress
// lines: "pipeline=0.93 pubsub_emulator=1.10 bigtable_emulator=0.08 machine=1.98/2".
func (u CPUUse) Line() string {
	if u.Wall <= 0 {
		return ""
	}
	cores := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds()/u.Wall.Seconds(), 'f', 2, 64) }
	return u.format(cores) + fmt.Sprintf("/%d", u.Cores)
}

// Seconds is u in CPU seconds, for the run's last lines.
func (u CPUUse) Seconds() string {
	secs := func(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) }
	return u.format(secs) + fmt.Sprintf(" wall=%s cores=%d", secs(u.Wall), u.Cores)
}

func (u CPUUse) format(f func(time.Duration) string) string {
	var b strings.Builder
	b.WriteString("pipeline=" + f(u.Pipeline))
	if u.PubSubEmulator > 0 {
		b.WriteString(" pubsub_emulator=" + f(u.PubSubEmulator))
	}
	if u.BigtableEmulator > 0 {
		b.WriteString(" bigtable_emulator=" + f(u.BigtableEmulator))
	}
	b.WriteString(" machine=" + f(u.Machine))
	return b.String()
}

// cpuMeter reads a CPUUse. The emulators' process ids are zero when the run
// did not start them (PUBSUB_EMULATOR_HOST or BIGTABLE_EMULATOR_HOST set).
type cpuMeter struct {
	start                time.Time
	pubsubPgid, bigtable int
}

func (m cpuMeter) read() CPUUse {
	u := CPUUse{Wall: time.Since(m.start), Pipeline: selfCPU(), Machine: machineCPU(), Cores: runtime.NumCPU()}
	if m.pubsubPgid > 0 {
		u.PubSubEmulator = processGroupCPU(m.pubsubPgid)
	}
	if m.bigtable > 0 {
		u.BigtableEmulator = processCPU(m.bigtable)
	}
	return u
}

// selfCPU is this process's user and system time, all threads (DuckDB's too).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// this runs on (the kernel fixes it for user space).
const clockTicks = 100

// procStat is the fields of a /proc/<pid>/stat file after the command, which
// may hold spaces and parentheses: they start after its last ')', with the
// state (field 3) first.
func procStat(path string) []string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	stat := string(raw)
	return strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
}

// statCPU is user plus system time (fields 14 and 15) of procStat's fields.
func statCPU(f []string) time.Duration {
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// processCPU is the user and system time of process pid, 0 if it is gone.
func processCPU(pid int) time.Duration {
	return statCPU(procStat("/proc/" + strconv.Itoa(pid) + "/stat"))
}

// processGroupCPU is the user and system time of the live processes in
// process group pgid (the Pub/Sub emulator's gcloud wrapper and its JVM).
func processGroupCPU(pgid int) time.Duration {
	group := strconv.Itoa(pgid)
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var total time.Duration
	for _, p := range procs {
		f := procStat(p)
		if len(f) >= 3 && f[2] == group { // field 5, the process group
			total += statCPU(f)
		}
	}
	return total
}

// machineCPU is the time every CPU of this machine spent running something
// (user, nice, system, irq, softirq: not idle, iowait or the hypervisor's
// steal), from the first line of /proc/stat; 0 where it cannot be read.
func machineCPU() time.Duration {
	raw, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 || i == 7 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}
