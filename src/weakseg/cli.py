"""`weakseg <command>`: the command-line interface.

Commands:
    demo         synthetic (or any) dataset -> pseudo labels -> mIoU table + overlay pictures
    labels       run a pseudo-label generator over a dataset (parallel, sharded, resumable)
    export-labels  a label directory as COCO instances JSON (one mask per box)
    eval-labels  score a label directory against the dataset's masks (per-class IoU, mIoU)
    fill-rates   per-class box filling rates of label directories and/or the ground truth, + plot
    doctor       check a dataset for unreadable, malformed or inconsistent files
    train        train a segmentation model from a YAML config (resumable; torchrun for DDP)
    lpg          LPG: train stage-wise box-to-mask generators on masks, deploy them on boxes
    eval         score a trained run on a dataset (multi-scale, flips, dense CRF optional)
    predict      label images or folders with a trained run: PNG label maps + overlays
    report       pictures of a trained run: predictions, attention maps, pixel affinities
    export       write a trained run's segmentation network as ONNX
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import weakseg
from weakseg.outputs import writable_dir, writable_file


def parse_overrides(pairs: list[str]) -> dict:
    """['iterations=5', 'bi_srgb=3.5'] -> {'iterations': 5, 'bi_srgb': 3.5} (YAML-typed values)."""
    from weakseg.config import read_yaml_value

    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"parameter override {pair!r} must look like key=value")
        params[key.strip()] = read_yaml_value(value, f"parameter override {pair!r}")
    return params


def load_params(config: str | None, overrides: list[str]) -> dict:
    """Generator parameters from an optional flat YAML file, then key=value overrides on top."""
    from weakseg.config import read_yaml

    params = {}
    if config:
        loaded = read_yaml(config) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{config}: expected a mapping of generator parameters")
        params.update(loaded.get("params", loaded))
    params.update(parse_overrides(overrides))
    return params


def trained_for_generator(generator: str, params: dict):
    """The trained network a generator needs, loaded on the CPU from its ``run_dir`` parameter
    (a ``weakseg.pseudo.base.TrainedModel``); None for generators that need none, or when
    run_dir is missing (the generator's own error then says what to pass)."""
    from weakseg.pseudo.base import TrainedModel
    from weakseg.pseudo.registry import generator_class

    if not generator_class(generator).needs_model or not params.get("run_dir"):
        return None
    from weakseg.engine.loop import load_trained

    network, cfg = load_trained(params["run_dir"], "cpu")
    return TrainedModel(network, cfg.train.method, str(params["run_dir"]))


def cmd_labels(args: argparse.Namespace) -> int:
    from weakseg.pseudo.runner import parse_shard, run_labels

    params = load_params(args.config, args.params)
    summary = run_labels(
        args.dataset, args.generator, args.out, params=params, workers=args.workers,
        shard=parse_shard(args.shard), progress=not args.no_progress,
        trained=trained_for_generator(args.generator, params),
    )  # fmt: skip
    print(summary.format())
    if args.format == "coco":
        _export_instances(args.dataset, args.out, Path(args.out) / "instances.json")
    return 1 if summary.num_failed or summary.nothing_done else 0


def cmd_export_labels(args: argparse.Namespace) -> int:
    _export_instances(args.dataset, args.labels, args.out or Path(args.labels) / "instances.json")
    return 0


def _export_instances(spec: str, labels: str, out: str | Path) -> None:
    from weakseg.data.specs import open_dataset
    from weakseg.pseudo.instances import export_coco

    print(export_coco(open_dataset(spec), labels, out).format())


def cmd_eval_labels(args: argparse.Namespace) -> int:
    from weakseg.data.specs import open_dataset
    from weakseg.engine.evaluate import evaluate_label_dir, format_table

    if args.json:
        writable_file(args.json, "--json file")
    dataset = open_dataset(args.dataset)
    result = evaluate_label_dir(dataset, args.labels, progress=not args.no_progress)
    name = Path(args.labels).name or str(args.labels)
    print(format_table({name: result.confusion}, dataset.classes.names))
    print(result.describe())
    if args.json:
        result.to_json(args.json)
        print(f"wrote {args.json}")
    return 0


def cmd_fill_rates(args: argparse.Namespace) -> int:
    from weakseg.data.specs import open_dataset
    from weakseg.fillrate import fill_rate_stats, format_fill_rates, plot_fill_rates

    if args.plot:
        writable_file(args.plot, "--plot file")
    dataset = open_dataset(args.dataset)
    sources = {"ground truth": None} if not args.no_gt else {}
    sources.update({Path(d).name: d for d in args.labels})
    rates = {name: fill_rate_stats(dataset, d, progress=not args.no_progress)
             for name, d in sources.items()}  # fmt: skip
    print(format_fill_rates(rates, dataset.classes.names))
    if args.plot:
        plot_fill_rates(rates, dataset.classes.names, args.plot)
        print(f"wrote {args.plot}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from weakseg.doctor import diagnose

    if args.json:
        writable_file(args.json, "--json file")
    report = diagnose(args.dataset, progress=not args.no_progress)
    print(report.format())
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from weakseg.demo import DemoSettings, run_demo

    settings = DemoSettings(dataset=args.dataset, val=args.val or "", workers=args.workers,
                            progress=not args.no_progress, train=not args.labels_only)  # fmt: skip
    for key in ("iterations", "crop_size", "batch_size"):
        if getattr(args, key) is not None:
            setattr(settings, key, getattr(args, key))
    if args.tags:
        from weakseg.demo_tags import run_tags_demo

        run_tags_demo(writable_dir(args.out, "--out folder"), settings)
        return 0
    run_demo(writable_dir(args.out, "--out folder"), settings)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from weakseg.config import load_config
    from weakseg.engine.loop import train

    cfg = load_config(args.config, args.overrides)
    writable_dir(args.run_dir, "--run-dir")
    summary = train(cfg, args.run_dir, progress=not args.no_progress)
    if summary:
        print(json.dumps(summary, indent=2))
    return 0


def cmd_lpg(args: argparse.Namespace) -> int:
    from weakseg.methods.lpg import load_lpg_config, run_lpg

    cfg = load_lpg_config(args.config, args.overrides)
    writable_dir(args.run_dir, "--run-dir")
    summary = run_lpg(
        cfg,
        args.run_dir,
        progress=not args.no_progress,
        say=lambda m: print(f"weakseg lpg: {m}", file=sys.stderr, flush=True),
    )
    print(json.dumps(summary, indent=2))
    return 0


def _eval_options(args: argparse.Namespace, cfg) -> dict:
    """Test-time scales / flip / CRF from the run's config, switched on by the flags."""
    from weakseg.crf import CrfParams

    e = cfg.eval
    scales = MULTISCALE if args.multiscale else tuple(e.scales)
    crf = CrfParams.from_prefixed(e, "crf_") if e.crf or args.crf else None
    warp = e.warp if args.warp is None else args.warp
    return {"scales": scales, "flip": e.flip or args.multiscale or args.flip, "crf": crf,
            "warp": warp}  # fmt: skip


MULTISCALE = (0.5, 0.75, 1.0, 1.5)  # with flips: the DeepLab / BANA test protocol


def cmd_eval(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from weakseg.data.dataset import SkippedSamples
    from weakseg.data.specs import open_dataset
    from weakseg.engine.evaluate import format_table
    from weakseg.engine.inference import evaluate_model
    from weakseg.engine.loop import load_trained
    from weakseg.engine.memory import keep_freed_memory
    from weakseg.pseudo.store import write_json_atomic
    from weakseg.viz.plots import plot_confusion

    model, cfg = load_trained(args.run_dir, args.device)
    if cfg.train.keep_freed_memory:
        keep_freed_memory()
    dataset = open_dataset(_dataset_spec(args, cfg))
    check_classes(cfg, dataset)
    out = writable_dir(Path(args.run_dir) / "eval", "eval folder of the run")
    if args.json:
        writable_file(args.json, "--json file")
    options = _eval_options(args, cfg)
    skipped = SkippedSamples()
    cm = evaluate_model(model, dataset, progress=not args.no_progress, skipped=skipped, **options)
    tag = args.tag or ("ms" if args.multiscale else "ss") + ("-crf" if options["crf"] else "")
    print(format_table({f"{Path(args.run_dir).name} ({tag})": cm}, dataset.classes.names))
    if skipped:
        print(skipped.describe(len(dataset)), file=sys.stderr)
    crf = asdict(options["crf"]) if options["crf"] else None
    result = {"dataset": dataset.spec, "scales": list(options["scales"]), "flip": options["flip"],
              "warp": options["warp"], "crf": crf, **cm.to_dict(dataset.classes.names)}  # fmt: skip
    write_json_atomic(out / f"{tag}.json", result)
    if args.json:
        write_json_atomic(args.json, result)
    plot_confusion(cm.matrix, dataset.classes.names, out / f"{tag}-confusion.png",
                   title=f"{Path(args.run_dir).name}: mIoU {100 * cm.miou():.1f}")  # fmt: skip
    print(f"wrote {out / f'{tag}.json'} and {out / f'{tag}-confusion.png'}")
    return 0


def _dataset_spec(args: argparse.Namespace, cfg) -> str:
    """--dataset, else the run's data.val; ValueError when neither is set."""
    spec = args.dataset or cfg.data.val
    if not spec:
        raise ValueError(
            f"no dataset: pass --dataset, or set data.val in {Path(args.run_dir) / 'config.yaml'}"
        )
    return spec


def check_classes(cfg, dataset) -> None:
    """ValueError naming both class lists when the run's model predicts another number of
    classes than ``dataset`` has: its mIoU under the dataset's names would mean nothing."""
    from weakseg.data.specs import open_dataset

    if cfg.model.num_classes in (0, len(dataset.classes)):
        return
    try:
        trained = ", ".join(open_dataset(cfg.data.train).classes.names)
    except (ValueError, OSError):  # the training set may live elsewhere by now
        trained = f"{cfg.model.num_classes} classes of {cfg.data.train}"
    raise ValueError(
        f"the model predicts {cfg.model.num_classes} classes ({trained}) but {dataset.spec} has "
        f"{len(dataset.classes)} ({', '.join(dataset.classes.names)}); evaluate it on a dataset "
        "with the classes it was trained on"
    )


def cmd_predict(args: argparse.Namespace) -> int:
    from weakseg.data.dataset import DataError
    from weakseg.data.files import read_image
    from weakseg.engine.inference import predict_labels
    from weakseg.engine.loop import load_trained
    from weakseg.predictions import class_shares, run_class_names, write_predictions_json
    from weakseg.viz.overlay import overlay, save_png, side_by_side, with_legend
    from weakseg.viz.palette import save_label_png

    paths = _image_paths(args.inputs)
    out = writable_dir(args.out, "--out folder")
    model, cfg = load_trained(args.run_dir, args.device)
    options = _eval_options(args, cfg)
    names = run_class_names(cfg, cfg.model.num_classes)
    skipped, entries = 0, []
    for path in paths:
        try:
            image = read_image(path)
        except DataError as err:
            print(f"skipped {err}", file=sys.stderr)
            skipped += 1
            continue
        labels = predict_labels(model, image, **options)
        save_label_png(out / f"{path.stem}.png", labels)
        picture = side_by_side([("image", image), ("prediction", overlay(image, labels))])
        save_png(out / "overlays" / f"{path.stem}.png", with_legend(picture, [labels], names))
        entries.append({"image": str(path), "labels": f"{path.stem}.png",
                        "classes": class_shares(labels, names)})  # fmt: skip
    summary = write_predictions_json(out, args.run_dir, names, entries)
    skip_note = f"; skipped {skipped} unreadable" if skipped else ""
    print(f"predicted {len(paths) - skipped} images into {out} (overlays in {out / 'overlays'}, "
          f"summary in {summary}){skip_note}")  # fmt: skip
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from weakseg.data.specs import open_dataset
    from weakseg.engine.loop import load_trained
    from weakseg.pseudo.store import LabelStore
    from weakseg.viz.maps import write_model_report
    from weakseg.viz.report import run_eval_tables

    model, cfg = load_trained(args.run_dir, args.device, args.snapshot)
    dataset = open_dataset(_dataset_spec(args, cfg))
    check_classes(cfg, dataset)
    ids = args.ids or dataset.ids[: args.limit]
    unknown = [i for i in ids if i not in set(dataset.ids)]
    if unknown:
        raise ValueError(f"{dataset.spec} has no image(s) {unknown}")
    index = {i: k for k, i in enumerate(dataset.ids)}
    samples = [dataset[index[i]] for i in ids]
    default_out = "report" if args.snapshot is None else f"report-{args.snapshot}"
    out = writable_dir(args.out or Path(args.run_dir) / default_out, "report folder")
    title = f"{Path(args.run_dir).name} ({cfg.train.method}) on {dataset.spec}"
    if args.snapshot is not None:
        title += f", weights after {args.snapshot} iterations"
    labels = args.labels or (cfg.data.labels if cfg.train.method == "bana" else "")
    store = LabelStore(labels) if labels else None
    tables, names = run_eval_tables(args.run_dir)
    if names != list(dataset.classes.names):
        tables = {}  # evaluated on another class list: not comparable row by row
    page = write_model_report(model, samples, dataset.classes.names, out, title, store, tables)
    print(f"wrote {len(samples)} pictures and {page}")
    return 0


def _image_paths(inputs: list[str]) -> list[Path]:
    suffixes = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
    paths = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.suffix.lower() in suffixes)
        elif item.exists():
            paths.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such image or folder")
    return _unique_stems(paths)


def _unique_stems(paths: list[Path]) -> list[Path]:
    """``paths`` if no two share a file stem (outputs are named <stem>.png); ValueError naming
    the pair otherwise, before anything is computed or overwritten."""
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen and seen[path.stem] != path:
            raise ValueError(
                f"{seen[path.stem]} and {path} would both be written as {path.stem}.png; "
                "predict them into separate --out folders or rename one"
            )
        seen[path.stem] = path
    return list(dict.fromkeys(paths))


def cmd_export(args: argparse.Namespace) -> int:
    from weakseg.engine.loop import load_trained
    from weakseg.export import export_onnx

    writable_file(args.onnx, "--onnx file")
    model, _ = load_trained(args.run_dir, "cpu")
    path = export_onnx(model, args.onnx, args.height, args.width, dynamic=not args.static)
    print(f"wrote {path}: input 'images' B x 3 x H x W float32 RGB in [0, 1], "
          "output 'logits' B x C x H x W")  # fmt: skip
    return 0


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    from weakseg.pseudo.registry import generator_names

    parser = argparse.ArgumentParser(prog="weakseg", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"weakseg {weakseg.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    parser.commands = sub.choices  # type: ignore[attr-defined]  # name -> subparser, parse_args

    def command(name: str, func, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        return p

    dataset_help = (
        "voc:ROOT[:SPLIT] | coco:IMAGES:ANN.json[:classes=voc] | folder:PATH | synthetic:N[:seed]"
    )
    p = command("demo", cmd_demo, "pseudo labels -> short training runs -> tables + report.html")
    p.add_argument("--dataset", default="synthetic:96:0", help=dataset_help)
    p.add_argument("--val", help="held-out dataset (default: synthetic with the next seed)")
    p.add_argument("--out", default="weakseg-demo", help="output folder (default: weakseg-demo)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--iterations", type=int, help="optimizer steps per training run (150)")
    p.add_argument("--crop-size", type=int, help="training crop (160; 320 for VOC)")
    p.add_argument("--batch-size", type=int, help="images per step (8)")
    p.add_argument("--labels-only", action="store_true", help="pseudo labels only, no training")
    p.add_argument(
        "--tags",
        action="store_true",
        help="the tag-only path instead: SEC cues and training from image tags",
    )

    p = command("labels", cmd_labels, "run a pseudo-label generator over a dataset")
    p.add_argument("--dataset", required=True, help=dataset_help)
    p.add_argument("--generator", required=True, choices=generator_names())
    p.add_argument("--out", required=True, help="label directory (resumed if it exists)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--shard", default="0/1", help="i/n: label only every n-th id from the i-th")
    p.add_argument("--config", help="YAML file of generator parameters")
    p.add_argument("--format", choices=("png", "coco"), default="png",
                   help="coco: also OUT/instances.json, one mask per box (COCO RLE)")  # fmt: skip
    p.add_argument("params", nargs="*", metavar="key=value", help="generator parameter overrides")

    p = command("export-labels", cmd_export_labels,
                "write a label directory as COCO instances: one mask per box")  # fmt: skip
    p.add_argument("--dataset", required=True, help=dataset_help + " (the labels' dataset)")
    p.add_argument("--labels", required=True, help="directory of <id>.png label maps")
    p.add_argument("--out", help="instances JSON to write (default: LABELS/instances.json)")

    p = command("eval-labels", cmd_eval_labels, "score a label directory against ground truth")
    p.add_argument("--dataset", required=True, help=dataset_help)
    p.add_argument("--labels", required=True, help="directory of <id>.png label maps")
    p.add_argument("--json", help="also write the result as JSON here")

    p = command("fill-rates", cmd_fill_rates, "per-class box filling rates (Box2Seg Fig. 2)")
    p.add_argument("--dataset", required=True, help=dataset_help)
    p.add_argument("--labels", nargs="*", default=[], help="label directories to compare")
    p.add_argument("--no-gt", action="store_true", help="leave out the ground-truth masks")
    p.add_argument("--plot", help="write a per-class plot PNG here")

    p = command("train", cmd_train, "train a model from a YAML config (resumes a run directory)")
    p.add_argument("config", help="experiment YAML (see configs/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. train.lr=0.01")
    p.add_argument("--run-dir", required=True, help="where the run writes everything")

    p = command("lpg", cmd_lpg, "LPG: stage-wise generators on masks (E), segmenters on their "
                "labels (M), deployed on a target's boxes (resumable)")  # fmt: skip
    p.add_argument("config", help="LPG YAML with lpg: and segmenter: sections (configs/*lpg*)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. lpg.stages=2")
    p.add_argument("--run-dir", required=True, help="where the stages are written")

    def test_time(p: argparse.ArgumentParser) -> None:
        p.add_argument("--run-dir", required=True, help="a finished `weakseg train` run")
        p.add_argument("--multiscale", action="store_true", help="scales 0.5-1.5 + flips")
        p.add_argument("--flip", action="store_true", help="average with the flipped image")
        p.add_argument("--crf", action="store_true", help="dense-CRF post-processing")
        p.add_argument("--warp", type=int, metavar="SIZE",
                       help="resize images to SIZE x SIZE for the network (SEC's test protocol; "
                       "default: the run's eval.warp, 0 = own size)")  # fmt: skip
        p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")

    p = command("eval", cmd_eval, "score a trained run: per-class IoU + confusion matrix")
    test_time(p)
    p.add_argument("--dataset", help=dataset_help + " (default: the run's data.val)")
    p.add_argument("--tag", help="name of the result files in RUN_DIR/eval/")
    p.add_argument("--json", help="also write the result as JSON here")

    p = command("predict", cmd_predict, "label images with a trained run")
    test_time(p)
    p.add_argument("inputs", nargs="+", help="image files and/or folders of images")
    p.add_argument("--out", required=True, help="folder for <stem>.png label maps + overlays/")

    p = command(
        "report",
        cmd_report,
        "pictures of a trained run: predictions, attention maps "
        "and pixel affinities (Box2Seg Fig. 4, 5) where the model has those heads",
    )
    p.add_argument("--run-dir", required=True, help="a finished `weakseg train` run")
    p.add_argument("--dataset", help=dataset_help + " (default: the run's data.val)")
    p.add_argument("--ids", nargs="*", help="image ids to show (default: the first --limit)")
    p.add_argument("--limit", type=int, default=6, help="images when --ids is not given")
    p.add_argument("--out", help="output folder (default: RUN_DIR/report)")
    p.add_argument("--labels", help="BANA: Y_crf/Y_ret label directory (default: data.labels)")
    p.add_argument("--snapshot", type=int, help="use the weights kept after N iterations "
                   "(train.snapshot_every), e.g. the NAL confidence at several epochs")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")

    p = command("export", cmd_export, "export the segmentation network to ONNX")
    p.add_argument("--run-dir", required=True, help="a finished `weakseg train` run")
    p.add_argument("--onnx", required=True, help="output .onnx file")
    p.add_argument("--height", type=positive_int, default=320, help="example input height")
    p.add_argument("--width", type=positive_int, default=320, help="example input width")
    p.add_argument("--static", action="store_true", help="fix the input size (default: dynamic)")

    p = command("doctor", cmd_doctor, "check a dataset for bad files; exit 1 on errors")
    p.add_argument("--dataset", required=True, help=dataset_help)
    p.add_argument("--json", help="also write the report as JSON here")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line; options and ``key=value`` overrides may come in any order
    (``train CONFIG --run-dir DIR key=value`` as well as ``train CONFIG key=value --run-dir DIR``).
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = parser.commands  # type: ignore[attr-defined]
    if not argv or argv[0] not in commands:
        return parser.parse_args(argv)  # --help, --version, or an error listing the commands
    args = commands[argv[0]].parse_intermixed_args(argv[1:])
    args.command = argv[0]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, FloatingPointError) as err:
        # Bad input from the user: one clear line, no traceback.
        print(f"weakseg {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"weakseg {args.command}: interrupted; re-run to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
