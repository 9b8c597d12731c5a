#pragma once
// Every layer of nn/ (one header per topic).
#include "nn/layers_activations.h"
#include "nn/layers_attention.h"
#include "nn/layers_containers.h"
#include "nn/layers_conv.h"
#include "nn/layers_linear.h"
#include "nn/layers_norm.h"
#include "nn/layers_rnn.h"
#include "nn/layers_transformer.h"
#include "nn/module.h"
