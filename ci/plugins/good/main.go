// A small Zabbix Agent 2 loadable plugin built against the official plugin SDK
// (git.zabbix.com/ap/plugin-support, the version Zabbix 6.0.14 agent2 uses). It is the
// "known good" peer of zbx-conform's certify-plugin tests.
//
// Metrics:
//
//	good.ping           returns 1; no parameters allowed
//	good.echo[p1,...]   variadic: returns its parameters joined by single spaces, or the
//	                    configured greeting when it has none (a metric may take any
//	                    number of parameters: the protocol leaves that to the plugin)
//
// It implements Exporter and Configurator. Validate accepts the options the agent
// sends (System.*) and an optional Greeting, and rejects any other option.
//
// ZBXC_GO_FAULT makes it misbehave on purpose (for negative tests):
//
//	crash-export   the process exits with status 2 on the first Export
//	hang-export    Export never returns
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"git.zabbix.com/ap/plugin-support/plugin"
	"git.zabbix.com/ap/plugin-support/plugin/container"
)

const pluginName = "Good"

type goodPlugin struct {
	plugin.Base
	greeting string
}

var impl goodPlugin

func (p *goodPlugin) Export(key string, params []string, ctx plugin.ContextProvider) (interface{}, error) {
	switch os.Getenv("ZBXC_GO_FAULT") {
	case "crash-export":
		os.Exit(2)
	case "hang-export":
		select {}
	}
	switch key {
	case "good.ping":
		if len(params) != 0 {
			return nil, errors.New("Too many parameters.")
		}
		return 1, nil
	case "good.echo":
		if len(params) == 0 {
			return p.greeting, nil
		}
		return strings.Join(params, " "), nil
	default:
		return nil, fmt.Errorf("Unsupported metric %q.", key)
	}
}

// optionNames lists the top-level option names of the private options tree the agent
// sends: {"Name":..., "Nodes":[{"Name":...}, ...]}.
func optionNames(privateOptions interface{}) ([]string, error) {
	if privateOptions == nil {
		return nil, nil
	}
	root, ok := privateOptions.(map[string]interface{})
	if !ok {
		return nil, fmt.Errorf("Cannot read options of type %T.", privateOptions)
	}
	nodes, _ := root["Nodes"].([]interface{})
	var names []string
	for _, n := range nodes {
		node, ok := n.(map[string]interface{})
		if !ok {
			return nil, errors.New("Malformed option node.")
		}
		name, _ := node["Name"].(string)
		names = append(names, name)
	}
	return names, nil
}

func (p *goodPlugin) Validate(privateOptions interface{}) error {
	names, err := optionNames(privateOptions)
	if err != nil {
		return err
	}
	for _, n := range names {
		if n != "System" && n != "Greeting" {
			return fmt.Errorf("Unknown option %q.", n)
		}
	}
	return nil
}

func (p *goodPlugin) Configure(global *plugin.GlobalOptions, privateOptions interface{}) {
	p.greeting = "hello"
}

func init() {
	plugin.RegisterMetrics(&impl, pluginName,
		"good.ping", "Returns 1 when the plugin answers.",
		"good.echo", "Returns its parameters joined by spaces (any number).")
}

func main() {
	h, err := container.NewHandler(pluginName)
	if err != nil {
		fmt.Fprintf(os.Stderr, "failed to create plugin handler: %s\n", err)
		os.Exit(1)
	}
	if err := h.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "failed to execute plugin handler: %s\n", err)
		os.Exit(1)
	}
}
