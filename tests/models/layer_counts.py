"""Parameter counts of single layers, written out from their formulas, so model tests can state
the book's architecture's count independently of the model code."""


def conv(k, cin, cout, groups=1):
    """A k x k convolution with bias (grouped: each output sees ``cin // groups`` inputs)."""
    return k * k * (cin // groups) * cout + cout


def dense(din, dout):
    return din * dout + dout


def bn(c):
    """Batch norm's scale and shift; the moving statistics are not parameters."""
    return 2 * c
