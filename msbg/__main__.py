"""Command line: ``python -m msbg JOBS.csv [--listeners FILE] [options]``.

Runs MSBG on every row of a job list (see :func:`msbg.batch.read_job_csv`) and prints a summary.
"""

from __future__ import annotations

import argparse
import logging
import sys

from msbg.batch import DEFAULT_EAR_PARAMS, os_error_message, read_job_csv, run_jobs


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the jobs, print the summary; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m msbg",
        description="MSBG hearing-loss simulation of binaural 44.1 kHz WAV files.",
    )
    parser.add_argument(
        "jobs",
        help="CSV with columns input,output and either listener (with --listeners) or "
        "left_250..left_8000,right_250..right_8000 (dB HL); paths relative to the CSV",
    )
    parser.add_argument("--listeners", help="Clarity listener JSON (for a 'listener' column)")
    parser.add_argument("--num-workers", type=int, default=0, help="0 = all cores (default)")
    parser.add_argument("--src-pos", default=DEFAULT_EAR_PARAMS["src_pos"], choices=["ff", "df", "ITU"])
    parser.add_argument("--equiv-0db-spl", type=float, default=DEFAULT_EAR_PARAMS["equiv_0db_spl"])
    parser.add_argument("--ahr", type=float, default=DEFAULT_EAR_PARAMS["ahr"])
    parser.add_argument(
        "--smearing-framing",
        default="pyclarity",
        choices=["pyclarity", "clean"],
        help="pyclarity (default, faithful) or clean framing of the spectral smearing",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo jobs whose output exists (default: skip)"
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress (default: one redrawn line on a terminal, ~10 lines in a log file)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        jobs = read_job_csv(args.jobs, args.listeners)
        summary = run_jobs(
            jobs,
            ear_params={
                "src_pos": args.src_pos,
                "sample_rate": DEFAULT_EAR_PARAMS["sample_rate"],
                "equiv_0db_spl": args.equiv_0db_spl,
                "ahr": args.ahr,
                "smearing_framing": args.smearing_framing,
            },
            num_workers=args.num_workers,
            progress=not args.quiet,
            skip_existing=not args.overwrite,
        )
    except OSError as err:  # an error of the operating system (read-only, disk full, ...)
        message = os_error_message(err) if err.errno is not None else str(err)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"processed {summary.n_processed}, skipped {summary.n_skipped}, "
        f"wall {summary.wall_s:.1f} s, cpu {summary.cpu_s:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
