"""Packaging for data_juicer_daar (install torch first on CPU machines: see README.md)."""

from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec((Path(__file__).parent / "data_juicer_daar" / "version.py").read_text(), version)

setup(
    name="data_juicer_daar",
    version=version["__version__"],
    description="DaaR (Diversity as a Reward) data selection ops for Data-Juicer",
    long_description=(Path(__file__).parent / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["data_juicer_daar", "data_juicer_daar.*"]),
    package_data={"data_juicer_daar": ["resources/*.yaml"]},
    install_requires=[
        "py-data-juicer>=1.6.1,<1.7",
        "torch>=2.4,<2.15",
        "transformers>=5.0,<6",
        "safetensors>=0.4",
        "scikit-learn>=1.3",
        "scipy>=1.10",
        "numpy>=1.26",
        "jsonlines>=4.0",
        "loguru>=0.7",
        "tqdm>=4.66",
        "pyyaml>=6.0",
        "matplotlib>=3.8",
        # py-data-juicer imports these without declaring them
        "aiohttp>=3.9",
        "ray>=2.9",
        # transformers needs both to read the default model's GGUF file
        "gguf>=0.10",
        "accelerate>=1.0",
    ],
    extras_require={
        # the trainer handoff (examples/sft_trl.py): versions checked with the transformers above
        "sft": ["trl==1.16.0", "peft==0.21.2"],
        "test": ["pytest>=8", "pytest-timeout>=2.3", "ruff==0.17.6", "trl==1.16.0", "peft==0.21.2"],
    },
    entry_points={
        "data_juicer.ops": ["daar = data_juicer_daar"],
        "console_scripts": ["daar = data_juicer_daar.tools.cli:main"],
    },
)
