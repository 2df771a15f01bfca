package main

import (
	"reflect"
	"strconv"
	"strings"
)

// SIGHUP reloads what can change while the process runs, a step at a
// time: each step says in the log what it did, or why it refused and kept
// what it had; one refusing leaves the others to run. Settings that only
// a restart changes are named in the log, and keep their old values.

// reloadStep is one thing SIGHUP reloads.
type reloadStep struct {
	name string
	run  func() error
}

// reloadSteps are the process's steps, in order: the config file's apps,
// then the certificate (tls.go), for new handshakes.
func (p *process) reloadSteps() []reloadStep {
	return []reloadStep{{name: "config", run: p.reloadConfig}, {name: "certificate", run: p.reloadCertificate}}
}

// reloadCertificate loads --tls-cert and --tls-key again; the certificate
// store logs what it did, and keeps the pair in use if the new one does
// not load.
func (p *process) reloadCertificate() error {
	if p.certs == nil {
		p.logger.Info("SIGHUP: nothing to reload (no certificate)")
		return nil
	}
	p.certs.reload(p.logger)
	return nil
}

// reload runs every step.
func (p *process) reload() {
	for _, st := range p.reloadSteps() {
		if err := st.run(); err != nil {
			p.logger.Error("reload: "+st.name+": refused, still serving what was loaded before: "+err.Error(), "step", st.name, "error", err.Error())
		}
	}
}

// reloadConfig reads --config again and serves its apps: added ones at
// once, removed or disabled ones have their connections closed (4001,
// 4003), changed ones take their new settings for what comes next
// (pusher.Server.SetApps); the console token changes too. A file that
// does not validate is refused whole.
func (p *process) reloadConfig() error {
	if p.cfg.ConfigFile == "" {
		p.logger.Info("reload: no --config: the apps come from the environment, which a running process cannot read again; nothing to reload")
		return nil
	}
	server, apps, err := readConfigFile(p.cfg.ConfigFile, p.cfg.Server.MaxRequestBody)
	if err != nil {
		return err
	}
	r, err := p.srv.SetApps(apps)
	if err != nil {
		return err
	}
	p.httpAPI.SetConsoleToken(server.ConsoleToken)
	p.cfg.Server.ConsoleToken = server.ConsoleToken
	if changed := restartOnly(p.cfg.Server, server); len(changed) > 0 {
		p.logger.Warn("reload: "+strings.Join(changed, ", ")+" changed in "+p.cfg.ConfigFile+": they take a restart, and keep their old values until then",
			"settings", changed)
	}
	p.logger.Info("reload: "+p.cfg.ConfigFile+": serving "+plural(len(apps), "app"), "apps", len(apps),
		"added", r.Added, "removed", r.Removed, "changed", r.Changed, "disabled", r.Disabled)
	return nil
}

// restartOnly names the process settings (the config file's top level)
// that differ between was and now: none of them changes while the
// process runs but console_token.
func restartOnly(was, now processConfig) []string {
	var names []string
	a, b := reflect.ValueOf(was), reflect.ValueOf(now)
	t := a.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "console_token" || reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			continue
		}
		names = append(names, name)
	}
	return names
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}
