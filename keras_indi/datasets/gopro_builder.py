"""TFDS builder for the GoPro motion-deblurring dataset, prepared from a manual download.

Importing this module imports TensorFlow Datasets (it is never imported by
``keras_indi.datasets`` itself): use `keras_indi.datasets.gopro_tfds` or
`keras_indi.datasets.gopro_tfds_builder`, or import it and call ``tfds.load("gopro", ...)``.

Example::

    import tensorflow_datasets as tfds
    from keras_indi.datasets.gopro_builder import GoPro

    builder = GoPro(data_dir="~/tfds")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir="~/downloads"))
    train = builder.as_dataset(split="train")   # {"blur", "sharp", "sequence", "frame"}
"""

import os

import tensorflow_datasets as tfds
from etils import epath

from keras_indi.datasets.folders import gopro_pairs

_HOMEPAGE = "https://seungjunnah.github.io/Datasets/gopro"
_CITATION = """@inproceedings{nah2017deep,
  title={Deep Multi-scale Convolutional Neural Network for Dynamic Scene Deblurring},
  author={Nah, Seungjun and Kim, Tae Hyun and Lee, Kyoung Mu},
  booktitle={CVPR},
  year={2017}
}"""


def _find_root(path):
    """The folder holding train/ and/or test/ under `path` (searching two levels down)."""
    path = os.fspath(path)
    candidates = [path]
    for _ in range(2):
        found = [
            c
            for c in candidates
            if os.path.isdir(os.path.join(c, "train")) or os.path.isdir(os.path.join(c, "test"))
        ]
        if found:
            return found[0]
        candidates = [
            os.path.join(c, d)
            for c in candidates
            for d in sorted(os.listdir(c))
            if os.path.isdir(os.path.join(c, d))
        ]
    found = [
        c
        for c in candidates
        if os.path.isdir(os.path.join(c, "train")) or os.path.isdir(os.path.join(c, "test"))
    ]
    return found[0] if found else None


class GoPro(tfds.core.GeneratorBasedBuilder):
    """GoPro (GOPRO_Large): 2103 training and 1111 test pairs of blurry / sharp 1280x720 frames."""

    name = "gopro"
    # Where TFDS looks for a checksums file (none: the data comes from a manual folder). Set
    # explicitly: TFDS's own lookup imports `importlib_resources`, which may be absent.
    code_path = epath.Path(__file__)
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release (keras-indi)."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="blur", description="Inputs: `blur` frames (linear averaging)."),
        tfds.core.BuilderConfig(
            name="blur_gamma", description="Inputs: `blur_gamma` frames (gamma-space averaging)."
        ),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Download GOPRO_Large.zip from https://seungjunnah.github.io/Datasets/gopro and place it,
    unchanged, in the manual folder (`manual_dir`), or extract it there. Accepted layouts:

        manual_dir/GOPRO_Large.zip
        manual_dir/GOPRO_Large/{train,test}/<sequence>/{blur,blur_gamma,sharp}/*.png
        manual_dir/{train,test}/<sequence>/{blur,blur_gamma,sharp}/*.png

    A split whose folder is absent is not generated.
    """

    def _info(self):
        return self.dataset_info_from_configs(
            description="GoPro dynamic-scene motion deblurring pairs (Nah et al., CVPR 2017).",
            features=tfds.features.FeaturesDict(
                {
                    "blur": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                    "sharp": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                    "sequence": tfds.features.Text(),
                    "frame": tfds.features.Text(),
                }
            ),
            supervised_keys=("blur", "sharp"),
            homepage=_HOMEPAGE,
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        manual = os.fspath(dl_manager.manual_dir)
        root = _find_root(manual)
        if root is None:
            archives = sorted(f for f in os.listdir(manual) if f.lower().endswith(".zip"))
            if not archives:
                raise ValueError(
                    f"GoPro manual folder {manual!r} holds neither GOPRO_Large.zip nor an extracted "
                    f"GOPRO_Large folder.\n{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
                )
            extracted = dl_manager.extract(os.path.join(manual, archives[0]))
            root = _find_root(extracted)
            if root is None:
                raise ValueError(f"{archives[0]!r} in {manual!r} has no train/ or test/ folder.")
        splits = {}
        for split in ("train", "test"):
            if os.path.isdir(os.path.join(root, split)):
                splits[split] = self._generate_examples(root, split)
        return splits

    def _generate_examples(self, root, split):
        pairs = gopro_pairs(root, split=split, blur=self.builder_config.name, check_sizes=False)
        for name, blur, sharp in zip(pairs.names, pairs.input_paths, pairs.target_paths):
            sequence, frame = name.split("/", 1)
            yield (
                name,
                {"blur": os.fspath(blur), "sharp": os.fspath(sharp), "sequence": sequence, "frame": frame},
            )
