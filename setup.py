from setuptools import find_packages, setup

# The Dagster family is pinned to one release: unpinned, pip resolves dagster-aws and
# dagster-postgres back to their 2021 releases.
DAGSTER = [
    "dagster==1.13.27",
    "dagster-webserver==1.13.27",
    "dagster-graphql==1.13.27",
    "dagster-aws==0.29.27",
    "dagster-postgres==0.29.27",
    "dagster-celery==0.29.27",
]

setup(
    name="numerai_assets",
    version="0.1.0",
    description="Scoring pipeline of a weekly data-science tournament, on Dagster.",
    packages=find_packages(exclude=["numerai_assets_tests", "benchmarks"]),
    python_requires=">=3.10",
    install_requires=[
        *DAGSTER,
        "numpy>=1.26",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "pandas>=2.1",
        "pyarrow>=14",
        "numba>=0.59",
        "threadpoolctl>=3.1",  # a sharded step's BLAS threads (batch/threads.py)
        "pymongo>=4.6",
        "montydb==2.5.6",  # store/keyed_reads.py extends its sqlite engine
        "boto3>=1.34",
        # The intake endpoint's app and server: ours to declare, not left to dagster-webserver.
        "starlette>=0.40",
        "uvicorn>=0.30",
        "matplotlib>=3.8",  # the round's and a submission's pictures (Agg, no display)
        "requests>=2.31",  # an upload asks the Dagster webserver for its run (GraphQL)
    ],
    extras_require={
        # The Kubernetes executor (deploy/k8s): what a deployment on Kubernetes installs.
        "k8s": ["dagster-k8s==0.29.27"],
        "dev": [
            "dagster-k8s==0.29.27",  # the deployments' executors are validated offline
            "dagster-dg-cli==1.13.27",  # `dg dev`: what `make run` starts
            "pytest>=8",
            "hypothesis>=6.100",
            "moto[server]>=5.0",
            "mongomock>=4.1",
            "ruff>=0.5",
        ],
    },
    entry_points={"console_scripts": ["numerai-assets=numerai_assets.cli:main"]},
)
