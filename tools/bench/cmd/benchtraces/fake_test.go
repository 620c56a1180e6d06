package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// fakeArg makes the test binary act as a trace forwarder (see fakeMain) instead of
// running tests, so measure can be tested without outrider or the collector.
const fakeArg = "benchtraces-fake-forwarder"

// fakeSystem is a system whose process is this test binary in fake mode.
func fakeSystem(name, mode string) system {
	return system{Name: name, Bin: os.Args[0], Configure: func(run runSetup) ([]string, error) {
		return []string{fakeArg, mode, strconv.Itoa(run.grpcPort), run.sinkAddr}, nil
	}}
}

// fakeForwarder passes each export request on to the sink unchanged, except as its
// mode says:
//
//	all   forward every request
//	drop  accept the third request but do not forward it
//	exit  exit after the third request
type fakeForwarder struct {
	mode string
	conn *grpc.ClientConn
	n    atomic.Int64
}

func (f *fakeForwarder) export(req []byte) error {
	n := f.n.Add(1)
	switch {
	case f.mode == "drop" && n == 3:
		return nil
	case f.mode == "exit" && n == 3:
		os.Exit(3)
	}
	var resp []byte
	return f.conn.Invoke(context.Background(), exportMethod, &req, &resp)
}

// fakeMain runs a fakeForwarder: MODE PORT SINKADDR. It stops on SIGTERM.
func fakeMain(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "fake forwarder: want MODE PORT SINKADDR")
		return 2
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	conn, err := grpc.NewClient(args[2], grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake forwarder:", err)
		return 1
	}
	defer conn.Close()
	lis, err := net.Listen("tcp", "127.0.0.1:"+args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake forwarder:", err)
		return 1
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}), grpc.MaxRecvMsgSize(sinkMaxRecvBytes))
	srv.RegisterService(&traceServiceDesc, &fakeForwarder{mode: args[0], conn: conn})
	go func() { <-term; srv.Stop() }()
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, "fake forwarder:", err)
		return 1
	}
	return 0
}
