import sys

from keras_indi.cli import main

sys.exit(main())
