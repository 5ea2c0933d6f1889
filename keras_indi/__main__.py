import sys

from keras_indi.apps.cli import run

sys.exit(run())
