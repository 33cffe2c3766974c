package pipelines

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/campaignpulse/campaignpulse/enrichment"
)

// PubSubEmulator is a running official Pub/Sub emulator: the Cloud SDK's
// launcher run directly, or `gcloud beta emulators pubsub start` where the
// launcher is not found, in its own process group so Stop takes the Java
// server with it.
type PubSubEmulator struct {
	Addr string // host:port, the value of PUBSUB_EMULATOR_HOST
	cmd  *exec.Cmd
	done chan struct{}
}

// PubSubEmulatorInstallHint says how to get the emulator when it is missing.
const PubSubEmulatorInstallHint = "install it with `gcloud components install pubsub-emulator beta` " +
	"(or, where the SDK came from apt, `apt-get install google-cloud-cli-pubsub-emulator`)"

// StartPubSubEmulator starts the emulator on a free loopback port for project
// and waits, up to a minute, until it accepts connections. Its log goes to
// logPath ("" discards it).
func StartPubSubEmulator(ctx context.Context, project, logPath string) (*PubSubEmulator, error) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return nil, fmt.Errorf("the Pub/Sub emulator needs gcloud on PATH; %s", PubSubEmulatorInstallHint)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(gcloud, "beta", "emulators", "pubsub", "start", "--host-port="+addr, "--project="+project, "--quiet")
	if launcher := pubsubEmulatorLauncher(); launcher != "" {
		// What gcloud runs, minus gcloud: the launcher script execs the
		// JVM, which then is our child and dies with us (below). Under
		// gcloud, the JVM is gcloud's child, and a killed run left it
		// running, a whole JVM on two cores.
		cmd = exec.Command(launcher, "--host=127.0.0.1", "--port="+strconv.Itoa(port))
	}
	// Its own process group, so Stop reaches the JVM; killed with us (the
	// signal reaches our child, the JVM itself when started directly).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if logPath != "" {
		f, err := os.Create(logPath)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cmd.Stdout, cmd.Stderr = f, f
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the Pub/Sub emulator: %w", err)
	}
	e := &PubSubEmulator{Addr: addr, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(e.done) }()
	deadline := time.After(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return e, nil
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("the Pub/Sub emulator exited before it listened (see %s); %s", logPath, PubSubEmulatorInstallHint)
		case <-deadline:
			e.Stop()
			return nil, errors.New("the Pub/Sub emulator did not listen within a minute")
		case <-ctx.Done():
			e.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pubsubEmulatorLauncher is the emulator's launcher script in the Cloud SDK
// that gcloud belongs to (where cbtemulator is found too), "" when it is not
// there (then gcloud starts it).
func pubsubEmulatorLauncher() string {
	root, err := enrichment.CloudSDKRoot()
	if err != nil {
		return ""
	}
	launcher := filepath.Join(root, "platform", "pubsub-emulator", "bin", "cloud-pubsub-emulator")
	if st, err := os.Stat(launcher); err != nil || st.Mode()&0o111 == 0 {
		return ""
	}
	return launcher
}

// Pgid is the process group of the emulator's gcloud wrapper and its JVM:
// a local streaming run reports its CPU (see processGroupCPU).
func (e *PubSubEmulator) Pgid() int { return e.cmd.Process.Pid }

// Stop kills the emulator and the JVM it started, and waits for gcloud to
// exit. Stopping twice is harmless. Its data was in memory and goes with it.
func (e *PubSubEmulator) Stop() {
	select {
	case <-e.done:
		return
	default:
	}
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	<-e.done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
