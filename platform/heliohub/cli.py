"""The ``heliohub`` command line."""

from __future__ import annotations

import argparse
import logging
import sys

from .store.location import ENVIRONMENT


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="heliohub", description="ESA's heliophysics archives as lazy xarray "
                                   "datasets: ingest archive files into the store, and more.")
    main.add_argument("-v", "--verbose", action="store_true", help="say what is being done, on standard error")
    commands = main.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser(
        "ingest", help="ingest archive files (CEF, CDF, FITS) into the archive store",
        description="Ingest files, folders, globs or fsspec URLs into the archive store. Known files change "
        "nothing; newer versions replace older ones; bad files are set aside with their reason and the command "
        "exits 1 listing them.")
    ingest.add_argument("paths", nargs="+", help="files, folders, globs or URLs")
    ingest.add_argument("--archive", help=f"the store: a folder or s3://bucket/prefix (default: ${ENVIRONMENT}; "
                        "S3 settings from the AWS_* variables, AWS_ENDPOINT_URL included)")
    ingest.add_argument("--dataset-id", help="put every file under this dataset ID instead of the file's own")
    ingest.add_argument("--include-path", action="append", default=[], metavar="DIR",
                        help="a folder of CEF header (.ceh) files; repeatable (CEFPATH is searched too)")
    _cluster_options(ingest, "read files in parallel", "the workers must reach the files: use URLs")
    ingest.add_argument("--quicklooks", nargs="?", const="1h,6h,24h", default=None, type=_periods, metavar="PERIODS",
                        help="pre-generate quicklooks for the windows the new records fall in (default periods: "
                        "1h,6h,24h), as the Cluster Science Archive does")
    ingest.add_argument("--batch-mb", type=_positive, metavar="MB",
                        help="write what has been read once the files' data in memory reach this many MiB, and go "
                        "on reading (default 512; memory use is a few times this, whatever the number of files)")
    ingest.add_argument("--release", metavar="NAME",
                        help="tag each dataset the ingest touched with this release name once all is written, so "
                        "that open_dataset(ID, version=NAME) opens it as it is now")
    ingest.add_argument("--json", action="store_true", help="print a JSON summary (and no progress bars)")
    fetch = commands.add_parser(
        "fetch", help="fetch datasets from an ESA archive (CSA, SOAR, SOHO, PROBA2), optionally into the store",
        description="Fetch datasets for a time range from an archive's public interface into the download folder "
        "(checked whole, resumable: a re-run fetches only what is missing), and with --ingest into the store. "
        "With --check, ask each archive (or the one named) the questions the fetchers depend on instead, and say "
        "of each whether it holds, has changed (exit 1) or could not be asked (exit 3).")
    from .fetching.registry import source_names

    fetch.add_argument("source", nargs="?", choices=source_names(),
                       help="the archive (sources registered under the entry point group heliohub.sources)")
    fetch.add_argument("dataset_ids", nargs="*", metavar="DATASET_ID",
                       help="the archive's dataset IDs (soho: instrument names); * and ? are wildcards")
    fetch.add_argument("--start", help="start of the range (UTC, ISO: 2001-06-11T20:00)")
    fetch.add_argument("--end", help="end of the range (UTC)")
    fetch.add_argument("--check", action="store_true", help="ask the archive(s) the questions the fetchers depend "
                       "on (tables, columns, a listing, a one-file download) and report each")
    fetch.add_argument("--ingest", action="store_true", help="ingest what was fetched into the store")
    fetch.add_argument("--archive", help=f"the store for --ingest (default: ${ENVIRONMENT})")
    fetch.add_argument("--download-dir", help="where downloads are kept (default: $HELIOHUB_DOWNLOAD_DIR or "
                       "~/.cache/heliohub/fetch)")
    fetch.add_argument("--url", help="the archive's base URL (default: $HELIOHUB_<SOURCE>_URL, else the public one)")
    fetch.add_argument("--format", choices=["CEF", "CDF", "CDF_ISTP"], help="csa: delivery format (default CEF)")
    fetch.add_argument("--window", default="1D", help="csa: time span of one request (default 1D; halved when the "
                       "archive refuses a package as too large)")
    fetch.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for an answer (default 60)")
    fetch.add_argument("--retries", type=int, default=4, help="retries of a failed request, with back-off")
    fetch.add_argument("--json", action="store_true", help="print a JSON summary (and no progress bars)")
    for name, what in (("quicklook", "a quicklook of datasets' key variables"),
                       ("inventory", "an inventory plot: when each dataset has data (from the catalog)")):
        plot = commands.add_parser(name, help=f"{what}, as PNG or HTML",
                                   description=f"Draw {what} from the archive store into a PNG (no browser or "
                                   "network needed) or an HTML file (works offline).")
        every = name == "inventory"
        plot.add_argument("dataset_ids", nargs="*" if every else "+", metavar="DATASET_ID",
                          help="dataset IDs; * and ? are wildcards" + (" (default: all)" if every else ""))
        plot.add_argument("--start", help="start of the range (UTC; default: the datasets' coverage)")
        plot.add_argument("--end", help="end of the range (UTC)")
        plot.add_argument("--out", required=True, help="the file to write: .png or .html")
        plot.add_argument("--archive", help=f"the store (default: ${ENVIRONMENT})")
    files = commands.add_parser(
        "files", help="the files a dataset of the store came from (provenance)",
        description="List the files a dataset came from, one row per file that went in, in the order they went in: "
        "name, version, size, SHA-256, records, first and last time, when and how it went in (ingested, or "
        "replaced an older version), and whether it is its delivery's current version.")
    files.add_argument("dataset_id", metavar="DATASET_ID")
    files.add_argument("--start", help="only files with records at or after this time (UTC)")
    files.add_argument("--end", help="only files with records at or before this time (UTC)")
    files.add_argument("--archive", help=f"the store (default: ${ENVIRONMENT})")
    files.add_argument("--json", action="store_true", help="print JSON records")
    upgrade = commands.add_parser(
        "upgrade", help="move a store written by an earlier heliohub to the present layout",
        description="Move every dataset of heliohub 0.1 (one commit each) and then the catalog (one commit) to the "
        "present layout, then split every manifest written before manifests were split along time (one commit "
        "per repository); readers see each whole, before or after. Re-run it to finish a run that stopped "
        "part-way.")
    upgrade.add_argument("--archive", help=f"the store (default: ${ENVIRONMENT})")
    serve = commands.add_parser(
        "serve", help="serve the store as a HAPI 3.1 server (capabilities, about, catalog, info, data)",
        description="Serve the archive store over HTTP as a HAPI 3.1 server, for hapiclient, Autoplot, SciQLop/"
        "speasy, IDL and MATLAB clients. Alone it answers anyone who reaches the address; run by JupyterHub as a "
        "service it asks for a hub login or token.")
    serve.add_argument("--archive", help=f"the store (default: ${ENVIRONMENT})")
    serve.add_argument("--address", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="the port (default: the hub service's, else 8900)")
    serve.add_argument("--max-request-mb", type=float, default=1000.0,
                       help="the largest data answer, in MB of binary records (default 1000, the CSA's 1 GB); "
                       "larger requests get HAPI 1408")
    exporting = commands.add_parser(
        "export", help="a time range of datasets as CDF, NetCDF-4, CSV or CEF files",
        description="Write a time range of datasets of the store as files other tools read (CDF with ISTP "
        "attributes, NetCDF-4, CSV, CEF-2.0), named as the CSA names its deliveries, into a folder or an fsspec URL.")
    exporting.add_argument("dataset_ids", nargs="+", metavar="DATASET_ID", help="the datasets")
    exporting.add_argument("--start", required=True, help="start of the range (UTC, ISO: 2001-06-11T20:00)")
    exporting.add_argument("--end", required=True, help="end of the range (UTC, inclusive)")
    exporting.add_argument("--format", default="cdf", choices=["cdf", "netcdf", "csv", "cef"],
                           help="the files' format")
    exporting.add_argument("--out", default=".", help="a folder or an fsspec URL (default: here)")
    exporting.add_argument("--archive", help=f"the store (default: ${ENVIRONMENT})")
    exporting.add_argument("--max-mb", type=float, default=None,
                           help="refuse a direct export larger than this many MB (default: $HELIOHUB_EXPORT_MAX_MB, "
                           "else 1000, the CSA's 1 GB; a job's limit is $HELIOHUB_EXPORT_JOB_MAX_MB, else 50 GB)")
    exporting.add_argument("--interval", choices=["all", "daily", "hourly"], default="all",
                           help="one file per dataset (all), or per day or hour that holds records")
    _cluster_options(exporting, "export as a job", "the workers write the files: --out must be a URL or a folder "
                     "they reach")
    exporting.add_argument("--json", action="store_true", help="print a JSON list of the files written")
    up = commands.add_parser("up", help="the whole platform on one machine (S3 endpoint, demo archive, JupyterHub, "
                             "Dask Gateway); settings as --UpSettings.<name>=<value>, see --help-all",
                             add_help=False)
    up.add_argument("settings", nargs=argparse.REMAINDER)
    down = commands.add_parser("down", help="stop what `heliohub up` started")
    down.add_argument("--data-dir", help="the data folder of that `heliohub up` (default: its default)")
    status = commands.add_parser("status", help="whether each part `heliohub up` started is up and answers")
    status.add_argument("--data-dir", help="the data folder of that `heliohub up` (default: its default)")
    return main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["up"]:
        from .up.run import up

        return up(argv[1:])
    args = parser().parse_args(argv)
    logging.basicConfig(format="heliohub %(name)s: %(message)s", stream=sys.stderr,
                        level=logging.WARNING)
    logging.getLogger("heliohub").setLevel(logging.INFO if args.verbose else logging.WARNING)
    if args.command == "down":
        from .up.run import down

        return down(args.data_dir)
    if args.command == "status":
        from .up.run import status

        return status(args.data_dir)
    if args.command in ("quicklook", "inventory"):
        return _plot(args)
    if args.command in ("files", "upgrade"):
        return _store_command(args)
    if args.command == "export":
        from .serving.export import main_export

        return main_export(args)
    if args.command == "serve":
        from .serving.server import main_serve

        return main_serve(args)
    if args.command == "fetch" and args.check:
        from .fetching.check import main_check

        return main_check(args)
    if args.command == "fetch":
        from .fetching import main_fetch

        return main_fetch(args)
    if args.command == "ingest":
        from .store.ingest import main_ingest

        hook = None
        if args.quicklooks:
            from .plots.figures import quicklook_redrawer

            hook = quicklook_redrawer(args.quicklooks)
        return main_ingest(args, before_commit=hook)
    return 2


def _cluster_options(parser: argparse.ArgumentParser, doing: str, reach: str) -> None:
    """``--dask ADDRESS`` or ``--gateway-workers N``: the Dask cluster a command works on (heliohub.dask_clusters)."""
    on_cluster = parser.add_mutually_exclusive_group()
    on_cluster.add_argument("--dask", metavar="ADDRESS", help=f"{doing} on this Dask scheduler's workers")
    on_cluster.add_argument("--gateway-workers", type=int, default=0, metavar="N",
                            help=f"{doing} on a new Dask Gateway cluster of N workers (the gateway of the "
                            f"DASK_GATEWAY__* settings; {reach})")


def _periods(text: str) -> list[str]:
    from .plots.pregenerated import parse_periods

    try:
        return parse_periods(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


def _store_command(args: argparse.Namespace) -> int:
    from .errors import HeliohubError

    try:
        if args.command == "files":
            from .store.access import file_table

            table = file_table(args.dataset_id, args.start, args.end, archive=args.archive)
            print(table.to_json(orient="records", date_format="iso") if args.json else table.to_string(index=False))
        else:
            from .store.upgrade import upgrade

            moved, split = upgrade(args.archive)
            print(f"heliohub upgrade: {len(moved)} dataset(s) moved to the present layout"
                  + (f": {', '.join(moved)}" if moved else "") + "; the catalog is a table; "
                  + f"{len(split)} repositor{'y' if len(split) == 1 else 'ies'} with manifests split"
                  + (f": {', '.join(split)}" if split else ""))
    except HeliohubError as error:
        print(f"heliohub {args.command}: {error}", file=sys.stderr)
        return 2
    return 0


def _plot(args: argparse.Namespace) -> int:
    from .errors import HeliohubError

    try:
        import heliohub

        if args.command == "quicklook":
            out = heliohub.save_quicklook(args.dataset_ids, args.start, args.end, args.out, archive=args.archive)
        else:
            figure = heliohub.inventory(args.dataset_ids or None, args.start, args.end, archive=args.archive)
            out = heliohub.save_figure(figure, args.out)
    except HeliohubError as error:
        print(f"heliohub {args.command}: {error}", file=sys.stderr)
        return 2
    print(f"heliohub {args.command}: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
