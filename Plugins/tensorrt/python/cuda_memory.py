"""Device memory, streams and events through the CUDA runtime of cuda-python, for
the TensorRT runner and the int8 calibrator (TensorRT's Python API takes device
pointers, not arrays). Every CUDA error becomes a RuntimeError naming the call.
"""

from __future__ import annotations

import os

import numpy as np


def runtime():
    """The CUDA runtime bindings: cuda.bindings.runtime (cuda-python 12.6+), else cuda.cudart."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError as error:
            raise ImportError(f"cuda-python is not installed ({error}); the TensorRT runner and "
                              f"calibrator need it for device memory") from error
    return cudart


def call(result, what: str):
    """The value of a cuda-python call, whose result is (error, value...)."""
    cudart = runtime()
    error, *values = result if isinstance(result, tuple) else (result,)
    if error != cudart.cudaError_t.cudaSuccess:
        _, name = cudart.cudaGetErrorName(error)
        raise RuntimeError(f"{what} failed: {name.decode() if isinstance(name, bytes) else name}")
    return values[0] if len(values) == 1 else (values or None)


class DeviceBuffer:
    def __init__(self, nbytes: int) -> None:
        self.nbytes = max(int(nbytes), 1)
        self.pointer = int(call(runtime().cudaMalloc(self.nbytes), f"cudaMalloc({self.nbytes})"))

    def free(self) -> None:
        if self.pointer:
            call(runtime().cudaFree(self.pointer), "cudaFree")
            self.pointer = 0


def copy_to_device(buffer: DeviceBuffer, array: np.ndarray, stream=None) -> None:
    cudart = runtime()
    kind = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
    if stream is None:
        call(cudart.cudaMemcpy(buffer.pointer, array.ctypes.data, array.nbytes, kind), "cudaMemcpy H2D")
    else:
        call(cudart.cudaMemcpyAsync(buffer.pointer, array.ctypes.data, array.nbytes, kind, stream),
             "cudaMemcpyAsync H2D")


def copy_to_host(array: np.ndarray, buffer: DeviceBuffer, stream) -> None:
    cudart = runtime()
    call(cudart.cudaMemcpyAsync(array.ctypes.data, buffer.pointer, array.nbytes,
                                cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync D2H")


def elapsed_ns(start, end) -> int:
    """Nanoseconds between two recorded events (CUDA reports ms, at about 0.5 us resolution)."""
    return round(float(call(runtime().cudaEventElapsedTime(start, end), "cudaEventElapsedTime")) * 1e6)


def entropy_calibrator(trt, arrays: dict, names: list[str], cache_path: str):
    """An IInt8EntropyCalibrator2 feeding the samples of `arrays` one at a time.

    arrays maps input names to samples stacked on axis 0 (empty to rely on an
    existing cache); the cache TensorRT writes lets a later build skip calibration.
    """

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.samples = next(iter(arrays.values())).shape[0] if arrays else 0
            self._next = 0
            self._buffers = {name: DeviceBuffer(np.ascontiguousarray(arrays[name][:1]).nbytes)
                             for name in names if name in arrays}

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, tensor_names):
            if self._next >= self.samples:
                return None
            pointers = []
            for name in tensor_names:
                sample = np.ascontiguousarray(arrays[name][self._next:self._next + 1])
                copy_to_device(self._buffers[name], sample)
                pointers.append(self._buffers[name].pointer)
            self._next += 1
            return pointers

        def read_calibration_cache(self):
            if os.path.isfile(cache_path):
                with open(cache_path, "rb") as file:
                    return file.read()
            return None

        def write_calibration_cache(self, cache) -> None:
            with open(cache_path, "wb") as file:
                file.write(bytes(cache))

    return Calibrator()
