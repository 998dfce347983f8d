"""Exercise checkers: each one runs the student's function on random inputs, compares it with an
oracle (PyTorch itself wherever possible), prints one line on success and raises
``AssertionError`` with a specific hint on failure.

One module per lesson: lesson N's exercise notebook ``notebooks/exercises/NN_exercises.ipynb`` is
checked by ``lessonNN.py`` here and tested by ``tests/test_checks_lessonNN.py``. Helpers that
several lessons share live in ``_common.py``. Graded test cells get their checkers through
:func:`fresh_checks`, which reads the lesson's module afresh from disk.
"""

from ._common import StudentCodeError, call_student  # noqa: F401
from ._guard import fresh_checks  # noqa: F401
from .lesson01 import (check_hidden_state_gradients, check_rnn_forward,  # noqa: F401
                       check_rnn_parameter_shapes, check_stacked_rnn_forward)
from .lesson02 import (check_count_lstm_parameters, check_gru_cell, check_lstm_cell,  # noqa: F401
                       check_memory_span, check_set_forget_bias)
from .lesson03 import check_build_vocab, check_encode, check_tokenize_review  # noqa: F401
from .lesson04 import (check_bucket_sampler, check_collate, check_last_real_output,  # noqa: F401
                       check_pack_by_hand, check_packed_final_states, check_reverse_within_length)
from .lesson05 import check_bidirectional_final_state, check_bigru_classifier, check_masked_max  # noqa: F401
from .lesson06 import (check_accuracy, check_confusion_matrix, check_fit_best,  # noqa: F401
                       check_predict_sentiment, check_train_step)
from .lesson07 import (check_attention_context, check_decoder_step, check_greedy_decode,  # noqa: F401
                       check_masked_attention_weights)
from .lesson08 import (check_perplexity_from_loss, check_perplexity_of_batches, check_sample_next_word,  # noqa: F401
                       check_shift_for_next_word, check_temperature_probabilities, check_tbptt_step)
from .lesson09 import check_discriminative_param_groups, check_slanted_triangular_lr, check_unfreeze  # noqa: F401
from .lesson10 import check_attention_mask, check_linear_scan, check_min_gru  # noqa: F401
