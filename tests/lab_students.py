"""Test helper: a micro lab student SFT-trained on instruct traces, the starting policy of the RL tests."""
from __future__ import annotations

from typing import Any


def micro_sft_student(n_train: int, n_test: int, sft_steps: int) -> tuple[Any, Any]:
    """``(student, splits)``: a ``micro`` student after ``sft_steps`` SFT steps on instruct traces of K=2 tasks."""
    from molesyn_lib.lab.student import TrainConfig, build_student, sft_rows, train_student
    from molesyn_lib.lab.tasks import TaskConfig, make_splits
    from molesyn_lib.lab.teachers import Teacher

    task = TaskConfig(length=2)
    splits = make_splits(n_train, n_test, task)
    student = build_student("micro", seed=0)
    train_student(student, sft_rows(Teacher("instruct", calibrate=False).traces(splits.train, 0, task)),
                  TrainConfig(max_steps=sft_steps, batch_size=8))
    return student, splits
