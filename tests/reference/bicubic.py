# Prints core/tests/fixtures/bicubic_torch.rs: PyTorch bicubic resampling of a small ramp, every mode.
import torch
import torch.nn.functional as F
h, w = 5, 7
x = torch.tensor([((i * 37) % 23) / 8.0 - 1.5 for i in range(h * w)], dtype=torch.float32).reshape(1, 1, h, w)
cases = [((3, 4), False, True), ((3, 4), False, False), ((6, 9), False, False), ((6, 9), False, True),
         ((8, 3), True, False), ((8, 3), True, True), ((2, 2), False, True), ((4, 16), False, True)]
print("// Printed by tests/reference/bicubic.py (torch.nn.functional.interpolate, mode=\"bicubic\", of a 1x1x5x7 ramp).")
print("const BICUBIC_TORCH: &[([usize; 2], bool, bool, &[f32])] = &[")
for size, ac, aa in cases:
    y = F.interpolate(x, size=size, mode="bicubic", align_corners=ac, antialias=aa).flatten().tolist()
    print(f"    ([{size[0]}, {size[1]}], {str(ac).lower()}, {str(aa).lower()}, &[{', '.join(f'{v:.7}' for v in y)}]),")
print("];")
