"""The training script: ``python main.py --help`` lists its commands (train, evaluate, watch, compare,
instinct); ``resonant_vectors.cli.main`` holds them."""
import sys

from resonant_vectors.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
