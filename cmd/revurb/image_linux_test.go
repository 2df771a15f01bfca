package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestImage builds the container image with `make image` and runs what it
// holds: `revurb version` prints the version the image was built with, and
// `revurb start --config /etc/revurb/revurb.yaml` with a config file where
// the README mounts it serves that file's app and answers GET /up, then
// drains and exits 0 on SIGTERM. It also checks the image's config (user
// 65532:65532, ports 8080 and 8081, the entrypoint) and its files (a static
// binary, the passwd entry, a CA bundle Go can load).
//
// It runs no container: that takes a container runtime (runc, crun) and the
// privileges to make namespaces, which not every machine has — the one this
// test was written on has neither an OCI runtime nor a Docker engine. So the
// image is built with buildah (installed by `make test`) into a storage of
// its own under the test's temporary directory, its filesystem is opened
// with `buildah from` and `buildah mount`, and its binary run in it the way
// a container would run it: as root, chrooted into the image's filesystem as
// the image's user, 65532, on the host's network (loopback ports). As
// another user, which may not chroot or change user, the filesystem is
// opened through `buildah unshare` and the binary run from it as that user.
func TestImage(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("buildah"); err != nil {
		t.Fatalf("buildah not found in PATH (%v): run `make test`, which installs it", err)
	}
	root := os.Geteuid() == 0
	dir := t.TempDir()
	// A storage of the test's own: the user's images are not touched, and
	// vfs needs no kernel mount (overlay inside a container often fails).
	store := []string{"--root", filepath.Join(dir, "storage"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs"}
	version := "image-test-" + strconv.Itoa(os.Getpid())
	image := "localhost/revurb-test:" + version

	// make image, as a user would run it, with buildah and that storage.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute) // a first build compiles every package
	defer cancel()
	mk := exec.CommandContext(ctx, "make", "-C", filepath.Join("..", ".."), "--no-print-directory", "image",
		"BUILDER=buildah "+strings.Join(store, " "), "IMAGE="+image, "VERSION="+version, "GO="+goTool())
	mk.SysProcAttr = childProcAttr()
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	buildah := func(args ...string) string {
		t.Helper()
		argv := append(append([]string{"buildah"}, store...), args...)
		if !root && args[0] == "mount" {
			// An unprivileged buildah mounts in a user namespace of its own.
			argv = append([]string{"buildah", "unshare"}, argv...)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	t.Cleanup(func() { buildah("rmi", "--force", image) })

	var inspect struct {
		OCIv1 struct {
			Config struct {
				User         string
				ExposedPorts map[string]struct{}
				Entrypoint   []string
				Cmd          []string
				Labels       map[string]string
			} `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(buildah("inspect", "--type", "image", image)), &inspect); err != nil {
		t.Fatalf("buildah inspect: %v", err)
	}
	conf := inspect.OCIv1.Config
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{name: "user", got: conf.User, want: "65532:65532"},
		{name: "exposed ports", got: conf.ExposedPorts, want: map[string]struct{}{"8080/tcp": {}, "8081/tcp": {}}},
		{name: "entrypoint", got: conf.Entrypoint, want: []string{"/usr/local/bin/revurb"}},
		{name: "cmd", got: conf.Cmd, want: []string{"start"}},
		{name: "version label", got: conf.Labels["org.opencontainers.image.version"], want: version},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("image %s: %v, want %v", c.name, c.got, c.want)
		}
	}

	ctr := buildah("from", "--pull=never", image)
	t.Cleanup(func() { buildah("rm", ctr) }) // runs before rmi: cleanups go last first
	fs := buildah("mount", ctr)

	wantStaticBinary(t, filepath.Join(fs, "usr/local/bin/revurb"))
	for _, c := range []struct{ file, want string }{
		{file: "etc/passwd", want: "revurb:x:65532:65532:"},
		{file: "etc/group", want: "revurb:x:65532:"},
	} {
		b, err := os.ReadFile(filepath.Join(fs, c.file))
		if err != nil || !strings.HasPrefix(string(b), c.want) {
			t.Errorf("image /%s: %q (%v), want a line starting %q", c.file, b, err, c.want)
		}
	}
	if pem, err := os.ReadFile(filepath.Join(fs, "etc/ssl/certs/ca-certificates.crt")); err != nil || !x509.NewCertPool().AppendCertsFromPEM(pem) {
		t.Errorf("image /etc/ssl/certs/ca-certificates.crt: no certificate Go can load (%v)", err)
	}
	if root {
		// What the image's user must read, and may not change.
		for _, c := range []struct {
			file string
			want os.FileMode
		}{
			{file: "usr/local/bin/revurb", want: 0o755},
			{file: "etc/ssl/certs/ca-certificates.crt", want: 0o644},
			{file: "etc/passwd", want: 0o644},
			{file: "etc/group", want: 0o644},
			{file: "etc/revurb", want: os.ModeDir | 0o755},
		} {
			fi, err := os.Stat(filepath.Join(fs, c.file))
			if err != nil {
				t.Errorf("image /%s: %v", c.file, err)
				continue
			}
			if uid := fi.Sys().(*syscall.Stat_t).Uid; fi.Mode() != c.want || uid != 0 {
				t.Errorf("image /%s: mode %v uid %d, want %v owned by root", c.file, fi.Mode(), uid, c.want)
			}
		}
	}

	// The config file where the README mounts it (a ConfigMap's files are
	// 0644 and root's too).
	const appConfig = "apps:\n  - {id: image-app, key: image-key, secret: image-secret}\n"
	if err := os.WriteFile(filepath.Join(fs, "etc/revurb/revurb.yaml"), []byte(appConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, config := "/usr/local/bin/revurb", "/etc/revurb/revurb.yaml"
	var attr *syscall.SysProcAttr
	if root {
		attr = childProcAttr()
		attr.Chroot = fs
		attr.Credential = &syscall.Credential{Uid: 65532, Gid: 65532}
	} else {
		bin, config = filepath.Join(fs, bin), filepath.Join(fs, config)
	}

	cmd := exec.Command(bin, "version")
	cmd.SysProcAttr = attr
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "revurb "+version+"\n" {
		t.Errorf("revurb version: %q (%v), want %q", out, err, "revurb "+version+"\n")
	}

	srv := startServer(t, serverConfig{Bin: bin, Attr: attr, Args: []string{"--config", config},
		AppID: "image-app", AppKey: "image-key", Secret: "image-secret"})
	if !strings.Contains(srv.out.String(), "app id=image-app key=image-key") {
		t.Errorf("the start line names no app of the mounted config:\n%s", srv.out.String())
	}
	wantHealthy(t, "GET /up", "http://"+srv.apiAddr()+"/up")
	dialWS(t, srv, "/app/image-key?protocol=7&client=js&version=8.4.0&flash=false").expectEstablished()
	if err := srv.terminate(5 * time.Second); err != nil {
		t.Errorf("SIGTERM: %v, want exit 0", err)
	}
}

// wantStaticBinary fails t unless path is an ELF executable that asks for no
// dynamic loader and no shared library: a scratch image has neither.
func wantStaticBinary(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("image binary: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("image binary %s asks for a dynamic loader: not static", path)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("image binary %s needs shared libraries %v: not static", path, libs)
	}
}
