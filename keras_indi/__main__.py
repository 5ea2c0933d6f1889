import sys

from keras_indi.apps.cli import main

sys.exit(main())
