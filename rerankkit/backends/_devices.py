"""Checking a requested torch device against what this machine offers.

torch accepts ``device="cuda"`` on a CPU-only build and fails later, inside the first
``.to(device)``, with a bare ``AssertionError: Torch not compiled with CUDA enabled`` that names
neither the argument nor the way out. Every transformer backend checks its ``device`` here at
construction instead, so the error names ``device`` and lists the devices there are.

Example:
    >>> device_problem("cuda:3", cuda_count=1, cuda_built=True, mps=False)
    "device='cuda:3' is not available: there is 1 CUDA device (cuda:0); available: cpu, cuda:0"
    >>> device_problem("cpu", cuda_count=0, cuda_built=False, mps=False) is None
    True
"""

from __future__ import annotations

from rerankkit._optional import require


def device_problem(
    requested: str, *, cuda_count: int, cuda_built: bool, mps: bool, torch_version: str = ""
) -> str | None:
    """Why ``requested`` (a parsed torch device string) cannot be used here; ``None`` if it can.

    Only ``cpu``, ``cuda[:N]`` and ``mps`` are judged; other kinds (``xpu``, ...) are left to
    torch.

    Args:
        requested: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...
        cuda_count: CUDA devices visible to torch.
        cuda_built: Whether this torch build has CUDA at all.
        mps: Whether Apple MPS is available.
        torch_version: Quoted in the message when the build lacks CUDA (``2.5.1+cpu``).

    Example:
        >>> device_problem("cuda", cuda_count=0, cuda_built=False, mps=False, torch_version="2.5+cpu")
        "device='cuda' is not available: this torch build (2.5+cpu) has no CUDA support; available: cpu"
    """  # noqa: E501 (the real message)
    kind, _, index = requested.partition(":")
    why = None
    if kind == "cuda":
        if not cuda_built:
            build = f" ({torch_version})" if torch_version else ""
            why = f"this torch build{build} has no CUDA support"
        elif cuda_count == 0:
            why = "torch has CUDA support but sees no GPU (driver, CUDA_VISIBLE_DEVICES?)"
        elif index.isdigit() and int(index) >= cuda_count:
            plural = "device" if cuda_count == 1 else "devices"
            last = "cuda:0" if cuda_count == 1 else f"cuda:0 to cuda:{cuda_count - 1}"
            verb = "is" if cuda_count == 1 else "are"
            why = f"there {verb} {cuda_count} CUDA {plural} ({last})"
    elif kind == "mps" and not mps:
        why = "Apple MPS is not available on this machine"
    if why is None:
        return None
    devices = ["cpu", *(f"cuda:{i}" for i in range(cuda_count)), *(["mps"] if mps else [])]
    return f"device={requested!r} is not available: {why}; available: {', '.join(devices)}"


def check_device(device: str) -> None:
    """Refuse a resolved ``device`` string this machine cannot run on.

    Raises:
        ValueError: Not a device string torch understands, or a device this machine lacks;
            the message names ``device`` and lists the available devices.
    """
    torch = require("torch", "transformers")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise ValueError(f"device={device!r} is not a torch device string: {error}") from None
    problem = device_problem(
        str(parsed),
        cuda_count=torch.cuda.device_count() if torch.cuda.is_available() else 0,
        cuda_built=torch.backends.cuda.is_built(),
        mps=torch.backends.mps.is_available(),
        torch_version=str(torch.__version__),
    )
    if problem is not None:
        raise ValueError(problem)
