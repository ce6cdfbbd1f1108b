"""FastLM's probe on a real model: each path's log-likelihoods against HFLM's, and both against float64.

FastLM uses a path (packed rows, cached contexts) only where, on a 13-token probe, it gives HFLM's float32
answers within ``FastLM._rounding``. This prints, per probe request, how far each path is from HFLM and how far
HFLM and FastLM are from a float64 copy of the same weights, so a path refused for rounding (not for a misread
mask) shows as nearer float64 than HFLM itself:

    .venv/bin/python benchmarks/probe_rounding.py --model <model dir> --threads 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from lm_eval.models.huggingface import HFLM
from transformers import AutoModelForCausalLM, AutoTokenizer

from gap_pipeline.scoring.fast_lm import PATHS, PROBE_TEXT, FastLM


def probe_requests(lm: FastLM) -> list:
    """The probe's four requests, built as ``FastLM._probe`` builds them."""
    ids = lm.tok_encode(PROBE_TEXT)
    ids = (ids * (13 // len(ids) + 1))[:13]
    return [((None, None), ids[:4], ids[4:7]), ((None, None), ids[:4], ids[7:10]),
            ((None, None), ids[:4], ids[10:13]), ((None, None), ids[1:6], ids[6:9])]


def path_answers(fast: FastLM, requests: list, path: str) -> list[tuple[float, bool]]:
    fast._sound = {"packed": path == "packed", "cached": path == "cached", "generate": True}
    return fast._score(requests, True, None, use_kept=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a model directory (e.g. models/base)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    fast = FastLM(pretrained=model, tokenizer=tokenizer, batch_size=16)
    requests = probe_requests(fast)
    hflm = HFLM._loglikelihood_tokens(fast, requests, disable_tqdm=True)
    exact = HFLM(pretrained=AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float64).eval(),
                 tokenizer=tokenizer, batch_size=16)
    float64 = HFLM._loglikelihood_tokens(exact, requests, disable_tqdm=True)
    print(f"model {Path(args.model).name}, {args.threads} threads; HFLM float32 log-likelihoods",
          [round(ll, 4) for ll, _ in hflm])
    print("allowed (FastLM._rounding):", [f"{fast._rounding(ll):.2e}" for ll, _ in hflm])
    print(f"{'':<16}{'minus HFLM float32':<54}minus float64")
    print(f"{'HFLM float32':<16}{'':<54}{[f'{a - b:+.2e}' for (a, _), (b, _) in zip(hflm, float64, strict=True)]}")
    for path in PATHS[:2]:
        got = path_answers(fast, requests, path)
        minus_hflm = [f"{a - b:+.2e}" for (a, _), (b, _) in zip(got, hflm, strict=True)]
        minus_exact = [f"{a - b:+.2e}" for (a, _), (b, _) in zip(got, float64, strict=True)]
        print(f"{path:<16}{str(minus_hflm):<54}{minus_exact}")
    fast._sound = None
    print("sound_paths():", fast.sound_paths())


if __name__ == "__main__":
    main()
