"""coor_descent as condjl's fixture scripts compute it, written from the spec (colt5.md §2.2): the soft top-k by
entropy-regularised coordinate descent, with the ε schedule e0 = max(eps_init or eps, eps), e <- max(e·decay, eps).
k is a number (built as float32 and cast to s's dtype, as the reference does) or a tensor of one k per row; masked
entries take -finfo(s.dtype).max in the iterations and score 0. Imported like safetensors_file (see its header)."""
import torch
import torch.nn.functional as F


def coor_descent(s, *, n_iters, k, eps=0.1, eps_init=None, eps_decay=1.0, mask=None):
    assert n_iters > 0
    mask_value = -torch.finfo(s.dtype).max
    if not torch.is_tensor(k):
        k = torch.Tensor([k]).to(s)
    else:
        k = k.unsqueeze(-1)
    logk = torch.log(k.clamp(min=1e-20))
    if mask is not None:
        s = s.masked_fill(~mask, mask_value)
    a = 0
    b = -s
    e = max(eps if eps_init is None else eps_init, eps)
    for _ in range(n_iters):
        sb = (s + b) / e
        if mask is not None:
            sb = sb.masked_fill(~mask, mask_value)
        a = e * (logk - sb.logsumexp(dim=-1, keepdim=True))
        b = -F.relu(s + a)
        e = max(e * eps_decay, eps)
    scores = ((s + a + b) / e).exp()
    if mask is not None:
        scores = scores.masked_fill(~mask, 0.0)
    return scores
