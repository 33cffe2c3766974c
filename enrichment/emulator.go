package enrichment

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"cloud.google.com/go/bigtable/bttest"
)

// EmulatorInstallHint says how to get the official emulator.
const EmulatorInstallHint = "install it with `gcloud components install bigtable` " +
	"(or, where the SDK came from apt, `apt-get install google-cloud-cli-bigtable-emulator`), " +
	"or point CBTEMULATOR at the binary"

// EmulatorPath finds cbtemulator: $CBTEMULATOR if set, else the Cloud SDK's
// platform/bigtable-emulator/cbtemulator (the SDK root from gcloud).
func EmulatorPath() (string, error) {
	if p := os.Getenv("CBTEMULATOR"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("CBTEMULATOR=%s: %w", p, err)
		}
		return p, nil
	}
	root, err := CloudSDKRoot()
	if err != nil {
		return "", fmt.Errorf("cbtemulator not found: %v; %s", err, EmulatorInstallHint)
	}
	p := filepath.Join(root, "platform", "bigtable-emulator", "cbtemulator")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("cbtemulator not found at %s; %s", p, EmulatorInstallHint)
	}
	return p, nil
}

// CloudSDKRoot is the root of the Google Cloud SDK that the gcloud on PATH
// belongs to, as gcloud reports it: the emulators live under its platform/.
func CloudSDKRoot() (string, error) {
	gcloud, err := exec.LookPath("gcloud")
	if err != nil {
		return "", errors.New("no gcloud on PATH")
	}
	out, err := exec.Command(gcloud, "info", "--format=value(installation.sdk_root)").Output()
	if err != nil {
		return "", fmt.Errorf("gcloud info: %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Emulator is a running cbtemulator process.
type Emulator struct {
	Addr string // host:port it listens on
	cmd  *exec.Cmd
	done chan struct{}
}

// StartEmulator starts cbtemulator on a free loopback port and waits until it
// listens. Stop it with Stop.
func StartEmulator(ctx context.Context) (*Emulator, error) {
	path, err := EmulatorPath()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, "-host", "127.0.0.1", "-port", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test or bench
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	e := &Emulator{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Cloud Bigtable emulator running on "); ok {
				addr <- strings.TrimSpace(a)
			}
		}
	}()
	go func() { cmd.Wait(); close(e.done) }()
	select {
	case e.Addr = <-addr:
	case <-e.done:
		return nil, fmt.Errorf("%s exited before it listened", path)
	case <-time.After(15 * time.Second):
		e.Stop()
		return nil, errors.New("cbtemulator did not report its address within 15 s")
	case <-ctx.Done():
		e.Stop()
		return nil, ctx.Err()
	}
	// It prints the address once listening; make sure a connection goes through.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", e.Addr, time.Second)
		if err == nil {
			c.Close()
			return e, nil
		}
		if time.Now().After(deadline) {
			e.Stop()
			return nil, fmt.Errorf("cbtemulator at %s does not accept connections: %w", e.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Pid is the emulator's process id: a local streaming run reports its CPU.
func (e *Emulator) Pid() int { return e.cmd.Process.Pid }

// Stop kills the emulator (its data is in memory and goes with it) and waits
// for it to exit. Stopping twice is harmless.
func (e *Emulator) Stop() {
	select {
	case <-e.done:
		return
	default:
	}
	e.cmd.Process.Kill()
	<-e.done
}

// StartInProcess starts the client library's in-process Bigtable (bttest) on
// a loopback port: what a local run uses when no emulator or instance is
// named. Close the returned server when done.
func StartInProcess() (*bttest.Server, error) {
	return bttest.NewServer("127.0.0.1:0")
}
