module github.com/neoscope/neoscope

go 1.26.8

require (
	github.com/nlpodyssey/safetensors v0.0.0-20250209183917-bfb01cc25f7c // indirect
	gonum.org/v1/gonum v0.17.0 // indirect
)
