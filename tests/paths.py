"""Folders of the repository that the tests read (configs, fixtures, tools, demo, dataset scripts)."""
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(REPO_ROOT, "configs")
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures")
TOOLS = os.path.join(REPO_ROOT, "tools")
DEMO = os.path.join(REPO_ROOT, "demo")
DATASET_SCRIPTS = os.path.join(REPO_ROOT, "datasets")
