package cpu

import "math"

// exp32 is e^x in float32 for x <= 0 (softmax arguments after subtracting
// the maximum): Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2, and the
// Cephes expf polynomial for e^r; relative error under 2e-7 against float64
// math.Exp (TestExp32), without the round trip through float64.
// Arguments below -87.3 return 0, as the float32 result would underflow;
// NaN returns NaN.
func exp32(x float32) float32 {
	if x < -87.33654 {
		return 0
	}
	if x != x {
		return x
	}
	const (
		log2e = 1.44269504088896341
		c1    = 0.693359375
		c2    = -2.12194440e-4
	)
	// n = round(x log2e): truncation toward zero of x log2e - 0.5 < 0.
	n := int32(x*log2e - 0.5)
	r := x - float32(n)*c1 - float32(n)*c2
	p := float32(1.9875691500e-4)
	p = p*r + 1.3981999507e-3
	p = p*r + 8.3334519073e-3
	p = p*r + 4.1665795894e-2
	p = p*r + 1.6666665459e-1
	p = p*r + 5.0000001201e-1
	e := p*r*r + r + 1
	// Scale by 2^n: x >= -87.33654 keeps n >= -126, a normal exponent.
	return e * math.Float32frombits(uint32(n+127)<<23)
}
