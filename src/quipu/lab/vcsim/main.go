// Command vcsim serves a simulated vCenter (govmomi's simulator) for Quipu's tests, demos
// and benchmarks. It prints one JSON line with its URL and inventory once it is ready, and
// removes its datastore directories when stopped with SIGINT or SIGTERM.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"os/signal"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"syscall"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// pager makes the property collector honour RetrieveOptions.MaxObjects as vCenter does (the
// simulator's own returns every object at once). The simulator makes one per session from
// the zero value, so the table of pending results is made on first use.
type pager struct {
	simulator.PropertyCollector
	mu      sync.Mutex
	tokens  int
	pending map[string]rest
}

type rest struct {
	objects []types.ObjectContent
	size    int
}

func (p *pager) page(r rest) *types.RetrieveResult {
	if r.size <= 0 || len(r.objects) <= r.size {
		return &types.RetrieveResult{Objects: r.objects}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending == nil {
		p.pending = map[string]rest{}
	}
	p.tokens++
	token := strconv.Itoa(p.tokens)
	p.pending[token] = rest{r.objects[r.size:], r.size}
	return &types.RetrieveResult{Objects: r.objects[:r.size], Token: token}
}

func (p *pager) take(token string) (rest, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.pending[token]
	delete(p.pending, token)
	return r, ok
}

func (p *pager) RetrievePropertiesEx(ctx *simulator.Context, req *types.RetrievePropertiesEx) soap.HasFault {
	body := p.PropertyCollector.RetrievePropertiesEx(ctx, req).(*methods.RetrievePropertiesExBody)
	if body.Res != nil && body.Res.Returnval != nil {
		body.Res.Returnval = p.page(rest{body.Res.Returnval.Objects, int(req.Options.MaxObjects)})
	}
	return body
}

func (p *pager) ContinueRetrievePropertiesEx(req *types.ContinueRetrievePropertiesEx) soap.HasFault {
	body := &methods.ContinueRetrievePropertiesExBody{}
	if r, ok := p.take(req.Token); ok {
		body.Res = &types.ContinueRetrievePropertiesExResponse{Returnval: *p.page(r)}
	} else {
		body.Fault_ = simulator.Fault("unknown token", &types.InvalidArgument{InvalidProperty: "token"})
	}
	return body
}

func (p *pager) CancelRetrievePropertiesEx(req *types.CancelRetrievePropertiesEx) soap.HasFault {
	p.take(req.Token)
	return &methods.CancelRetrievePropertiesExBody{Res: new(types.CancelRetrievePropertiesExResponse)}
}

// shape gives the inventory what a test needs to tell facts apart: memory from 512 MB to
// 2 GB, a template (the first VM by name), a powered-off VM (the second), and for every
// other VM a guest host name, an IPv4 and an IPv6 address; every VM's adapters get MACs
// of their own (the simulator gives every VM the same ones).
func shape() (vms int) {
	all := simulator.Map.All("VirtualMachine")
	sort.Slice(all, func(i, j int) bool { return all[i].Entity().Name < all[j].Entity().Name })
	for i, entity := range all {
		vm := entity.(*simulator.VirtualMachine)
		vm.Config.Hardware.MemoryMB = int32(512 * (1 + i%4))
		vm.Summary.Config.MemorySizeMB = vm.Config.Hardware.MemoryMB
		// The guest sees the MACs of the VM's own virtual adapters, as on a real vCenter.
		// The simulator's VMs share their device objects: each VM's adapter is copied first.
		nic := 0
		for k, device := range vm.Config.Hardware.Device {
			if _, ok := device.(types.BaseVirtualEthernetCard); ok {
				copied := reflect.New(reflect.TypeOf(device).Elem())
				copied.Elem().Set(reflect.ValueOf(device).Elem())
				vm.Config.Hardware.Device[k] = copied.Interface().(types.BaseVirtualDevice)
				card := copied.Interface().(types.BaseVirtualEthernetCard)
				mac := fmt.Sprintf("00:50:56:%02x:%02x:%02x", nic, i>>8&255, i&255)
				card.GetVirtualEthernetCard().MacAddress = mac
				if nic < len(vm.Guest.Net) {
					vm.Guest.Net[nic].MacAddress = mac
				}
				nic++
			}
		}
		if i < 2 {
			vm.Runtime.PowerState = types.VirtualMachinePowerStatePoweredOff
			vm.Summary.Runtime.PowerState = vm.Runtime.PowerState
			if i == 0 {
				vm.MarkAsTemplate(&types.MarkAsTemplate{This: vm.Self})
			}
			continue
		}
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		vm.Guest.HostName = fmt.Sprintf("vm%d.sim.example", i)
		vm.Summary.Guest.HostName, vm.Summary.Guest.IpAddress = vm.Guest.HostName, ip
		for n := range vm.Guest.Net {
			vm.Guest.Net[n].IpAddress = []string{ip, "fe80::1"}
			vm.Guest.Net[n].IpConfig = &types.NetIpConfigInfo{IpAddress: []types.NetIpConfigInfoIpAddress{
				{IpAddress: ip, PrefixLength: 8}, {IpAddress: "fe80::1", PrefixLength: 64}}}
		}
	}
	return len(all)
}

func main() {
	model := simulator.VPX()
	flag.IntVar(&model.Datacenter, "dc", 1, "datacenters")
	flag.IntVar(&model.Cluster, "cluster", 1, "clusters per datacenter")
	flag.IntVar(&model.ClusterHost, "host", 3, "hosts per cluster")
	flag.IntVar(&model.Host, "standalone-host", 1, "standalone hosts per datacenter")
	flag.IntVar(&model.Machine, "vm", 2, "VMs per cluster and per standalone host")
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	username := flag.String("username", "user", "the only username accepted")
	password := flag.String("password", "pass", "its password")
	useTLS := flag.Bool("tls", true, "serve HTTPS with a self-signed certificate")
	flag.Parse()

	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	defer model.Remove()
	vms := shape()
	collector := &pager{}
	collector.Self = model.ServiceContent.PropertyCollector
	simulator.Map.Put(collector)

	// The simulator panics when it cannot listen: say why in one line instead.
	if probe, err := net.Listen("tcp", *listen); err != nil {
		model.Remove()
		log.Fatalf("cannot listen on %s: %v", *listen, err)
	} else {
		probe.Close()
	}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	if *useTLS {
		model.Service.TLS = new(tls.Config)
	}
	server := model.Service.NewServer()
	defer server.Close()
	ready, _ := json.Marshal(map[string]interface{}{
		"url":  server.URL.Scheme + "://" + server.URL.Host + server.URL.Path,
		"host": server.URL.Hostname(), "port": server.Listener.Addr().(*net.TCPAddr).Port,
		"vms": vms, "hosts": len(simulator.Map.All("HostSystem")),
	})
	fmt.Println(string(ready))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
