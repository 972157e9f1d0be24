package checkpoint

import "fmt"

// ReadPyTorchBin reads the tensors of a legacy pytorch_model.bin.
// TODO(issue 7): implemented with github.com/nlpodyssey/gopickle.
func ReadPyTorchBin(path string) ([]Entry, error) {
	return nil, fmt.Errorf("%s: pytorch_model.bin is not supported yet", path)
}
