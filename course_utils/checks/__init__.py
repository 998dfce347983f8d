"""Exercise checkers: each one runs the student's function on random inputs, compares it with an
oracle (PyTorch itself wherever possible), prints one line on success and raises
``AssertionError`` with a specific hint on failure. One submodule per lesson.
"""

from ._common import StudentCodeError, call_student  # noqa: F401
from .recurrent import check_count_lstm_parameters, check_gru_cell, check_lstm_cell, check_rnn_forward, check_rnn_parameter_shapes, check_stacked_rnn_forward  # noqa: F401,E501
from .text_batching import check_build_vocab, check_collate, check_collate_truncate, check_encode, check_last_real_output, check_masked_mean, check_reverse_within_length, check_tokenize_review  # noqa: F401,E501
from .models_training import check_accuracy, check_bidirectional_final_state, check_bigru_classifier, check_confusion_matrix, check_masked_max, check_predict_sentiment, check_train_step  # noqa: F401,E501
