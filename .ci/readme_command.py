"""Print the README's N-th ```bash block (1-based): CI executes the Quick-start commands
as written instead of keeping a copy of them that could drift."""
import re
import sys
from pathlib import Path

readme = Path(__file__).resolve().parents[1] / "README.md"
blocks = re.findall(r"```bash\n(.*?)```", readme.read_text(), flags=re.S)
print(blocks[int(sys.argv[1]) - 1].strip())
