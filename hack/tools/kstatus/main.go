// Command kstatus prints the status sigs.k8s.io/cli-utils's kstatus computes for one
// Kubernetes object, as Flux's health checks (and `kpt live status`) see it.
//
// Usage: kstatus < object.json
//
// It reads one object (JSON, as `kubectl get -o json` prints it) on stdin and prints one
// JSON line: {"status":"Current|InProgress|Failed|Terminating|Unknown|NotFound",
// "message":"...","conditions":[...]}. It exits 1 when the object cannot be read or
// kstatus returns an error.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type output struct {
	Status     string             `json:"status"`
	Message    string             `json:"message"`
	Conditions []status.Condition `json:"conditions"`
}

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "usage: kstatus < object.json")
		os.Exit(2)
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail("reading stdin: %v", err)
	}
	object := &unstructured.Unstructured{}
	if err := object.UnmarshalJSON(input); err != nil {
		fail("stdin is not a Kubernetes object as JSON: %v", err)
	}
	result, err := status.Compute(object)
	if err != nil {
		fail("kstatus: %v", err)
	}
	conditions := result.Conditions
	if conditions == nil {
		conditions = []status.Condition{}
	}
	if err := json.NewEncoder(os.Stdout).Encode(output{
		Status:     result.Status.String(),
		Message:    result.Message,
		Conditions: conditions,
	}); err != nil {
		fail("writing stdout: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kstatus: "+format+"\n", args...)
	os.Exit(1)
}
